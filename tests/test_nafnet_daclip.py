"""NAFNet + DA-CLIP: zero-initialised conditioning, prompts in every block, content cross-attention."""

from __future__ import annotations

import torch

from restorezoo.models.nafnet_daclip import ContentCrossAttention, NAFNetDACLIP, NAFNetDACLIPNet

TINY = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))


class StubDACLIP(torch.nn.Module):
    """Stands in for DA-CLIP: embeddings that depend on the image's brightness."""

    embed_dim = 16

    def encode_image(
        self, images: torch.Tensor, control: bool = True, normalize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        stats = images.mean(dim=(2, 3))  # B × 3
        content = torch.cat([stats, stats.square()], dim=1).repeat(1, 3)[:, :16]
        return torch.nn.functional.normalize(content, dim=-1), torch.nn.functional.normalize(
            content.flip(-1), dim=-1
        )


def _conditioned_model() -> NAFNetDACLIP:
    torch.manual_seed(0)
    model = NAFNetDACLIP(**TINY, daclip=None)
    model.set_daclip(StubDACLIP())
    model.net = NAFNetDACLIPNet(**TINY, context_dim=16)
    return model


def test_zero_initialised_conditioning_leaves_nafnet_unchanged():
    torch.manual_seed(0)
    net = NAFNetDACLIPNet(**TINY, context_dim=16)
    x = torch.rand(2, 3, 20, 28)
    plain = net(x)
    conditioned = net(x, torch.randn(2, 16), torch.randn(2, 16))
    assert conditioned.shape == x.shape
    assert torch.allclose(plain, conditioned, atol=1e-6)


def test_every_block_is_prompted_and_cross_attention_sits_at_the_bottom():
    net = NAFNetDACLIPNet(**TINY, context_dim=16)
    prompted = [m for m in net.modules() if type(m).__name__ == "PromptedNAFBlock"]
    assert len(prompted) == 1 + 1 + 1 + 1 + 1  # two encoder, one middle, two decoder blocks
    attention = [m for m in net.modules() if isinstance(m, ContentCrossAttention)]
    assert len(attention) == 1 and net.cross_attention.to_q.in_features == 8 * 2**2


def test_trained_conditioning_changes_the_restoration():
    model = _conditioned_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    hq = torch.rand(4, 3, 16, 16)
    batch = {"lq": hq * torch.tensor([0.3, 0.3, 1.0, 1.0])[:, None, None, None], "hq": hq}
    losses = []
    for _ in range(30):
        loss, _ = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        degradation, content = model.conditioning(x)
        with_context = model.net(x, degradation, content)
        without = model.net(x)
    assert not torch.allclose(with_context, without, atol=1e-4)


def test_without_daclip_it_is_a_plain_nafnet_restorer():
    model = NAFNetDACLIP(**TINY, daclip=None)
    out = model(torch.rand(3, 17, 19))
    assert out.shape == (1, 3, 17, 19) and out.min() >= 0 and out.max() <= 1
    assert not any(k.startswith("_daclip") for k in model.state_dict())


def test_cli_fit_test_and_restore_reload_the_checkpoint(tmp_path, monkeypatch):
    from restorezoo import load_model, restore
    from restorezoo.cli import main
    from tests.conftest import REPO

    config = str(REPO / "configs/daclip/nafnet_daclip_quickstart.yaml")
    monkeypatch.chdir(tmp_path)
    quick = [
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "0",
    ]
    main(["fit", "--config", config, *quick])
    ckpt = tmp_path / "runs/nafnet-daclip-quickstart/checkpoints/last.ckpt"
    main(["test", "--config", config, "--ckpt_path", str(ckpt), "--trainer.limit_test_batches", "2"])
    model = load_model(ckpt=ckpt)
    assert isinstance(model, NAFNetDACLIP) and model.daclip is not None
    x = torch.rand(3, 21, 30)
    first = restore(x, model=model)
    second = restore(x, model=load_model(ckpt=ckpt))
    assert first.shape == x.shape and torch.allclose(first, second, atol=1e-5), (
        "the tiny conditioner is rebuilt identically"
    )
