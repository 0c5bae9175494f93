"""InstructIR: released-checkpoint compatibility, the ICB's released form, text caching, learning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restorezoo.encoders.text import resolve_text_encoder
from restorezoo.errors import CheckpointError, WeightsNotFoundError
from restorezoo.models.base import RestorationModule
from restorezoo.models.instructir import InstructionConditionBlock, InstructIR, InstructIRNet
from tests.conftest import TINY_INSTRUCTIR

SPEC = Path(__file__).parent / "specs" / "instructir_official_image_model_keys.json"


def _official_manifest() -> dict[str, list[int]]:
    if not SPEC.is_file():
        pytest.skip("shared/specs is not next to the checkout")
    return json.loads(SPEC.read_text())


def test_paper_size_state_dict_matches_the_released_checkpoint_names_and_shapes():
    manifest = _official_manifest()
    net = InstructIRNet()  # paper defaults: width 32, (2,2,4,8), 4, (2,2,2,2), 256
    ours = {name: list(t.shape) for name, t in net.state_dict().items()}
    assert ours == manifest
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(15.84e6, rel=1e-3)


def test_a_released_style_state_dict_loads_strictly_and_reproduces_outputs(tmp_path: Path, monkeypatch):
    torch.manual_seed(0)
    source = InstructIR(**TINY_INSTRUCTIR)
    for p in source.parameters():  # make the zero-initialised scales non-trivial
        torch.nn.init.normal_(p, std=0.05)
    torch.save(source.net.state_dict(), tmp_path / "im.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.head.state_dict().items()}}, tmp_path / "lm.pt")
    monkeypatch.setenv("RESTOREZOO_WEIGHTS", str(tmp_path))
    # Bare file names resolve through $RESTOREZOO_WEIGHTS; DDP "module." prefixes are stripped. The
    # released head belongs to BGE-micro-v2, so a MiniLM model must say it means to load it.
    with pytest.raises(CheckpointError, match="trained on 'TaylorAI/bge-micro-v2'"):
        InstructIR.from_official("im.pt", "lm.pt", **TINY_INSTRUCTIR)
    loaded = InstructIR.from_official("im.pt", "lm.pt", allow_other_encoder=True, **TINY_INSTRUCTIR)
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        assert torch.allclose(loaded(x, "remove the noise"), source.eval()(x, "remove the noise"), atol=1e-6)


def test_missing_released_weights_raise_one_clear_line(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RESTOREZOO_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as error:
        InstructIR.from_official("marcosv/InstructIR/im_instructir-7d.pt", **TINY_INSTRUCTIR)
    message = str(error.value)
    assert "\n" not in message and "im_instructir-7d.pt" in message and "RESTOREZOO_WEIGHTS" in message


def test_icb_follows_the_released_form_and_is_the_identity_at_init():
    torch.manual_seed(0)
    block = InstructionConditionBlock(channels=8, text_dim=16)
    x, text = torch.randn(2, 8, 5, 5), torch.randn(2, 16)
    assert torch.equal(block(x, text), x), "zero γ, β make f = 0 and NAFBlock(0) = 0"
    torch.nn.init.normal_(block.gamma)
    torch.nn.init.normal_(block.beta)
    gate = torch.sigmoid(block.fc(text))[:, :, None, None]
    expected = block.block((x * block.gamma + block.beta) * gate) + x
    assert torch.allclose(block(x, text), expected)
    assert not torch.allclose(block(x, text), block(x, torch.randn(2, 16))), "the text must change the output"


def test_global_residual_and_padding_keep_any_input_size():
    net = InstructIRNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), text_dim=16)
    torch.nn.init.zeros_(net.ending.weight)
    torch.nn.init.zeros_(net.ending.bias)
    x = torch.rand(2, 3, 17, 23)  # not a multiple of 4
    out = net(x, torch.randn(2, 16))
    assert out.shape == x.shape
    assert torch.equal(out, x), "with a zero ending conv the network returns its input (global residual)"


def test_prompt_embeddings_are_cached_and_never_need_gradients(tiny_instructir):
    model = tiny_instructir
    encoder = model.text_encoder
    calls = []
    original = encoder.model.encode
    encoder.model.encode = lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw)
    try:
        prompts = ["a cached prompt one", "a cached prompt two", "a cached prompt one"]
        first, _ = model.embed_prompts(prompts)
        second, _ = model.embed_prompts(prompts[::-1])
    finally:
        encoder.model.encode = original
    assert calls == [["a cached prompt one", "a cached prompt two"]], "each distinct string is encoded once"
    assert torch.allclose(first[0], second[2]) and torch.allclose(first[0], first[2])
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert not any(name.startswith("text_encoder") for name in model.state_dict()), "frozen encoder not saved"


def test_empty_prompt_falls_back_to_the_default_instruction(tiny_instructir):
    empty, _ = tiny_instructir.embed_prompts(["   "])
    default, _ = tiny_instructir.embed_prompts([tiny_instructir.default_prompt])
    assert torch.allclose(empty, default)


def test_loss_falls_on_a_fixed_tiny_batch():
    torch.manual_seed(0)
    model = InstructIR(**TINY_INSTRUCTIR)
    hq = torch.rand(4, 3, 32, 32)
    batch = {
        "lq": (hq * 0.4).clamp(0, 1),
        "hq": hq,
        "prompt": ["brighten this", "it is too dark", "remove noise", "denoise it"],
        "task": torch.tensor([4, 4, 0, 0]),
    }
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(40):
        loss, logs = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert logs["intent_acc"].item() == 1.0


def test_forward_accepts_plain_tensors_and_returns_the_input_size(tiny_instructir):
    out = tiny_instructir(torch.rand(3, 19, 26), "remove the rain")
    assert out.shape == (1, 3, 19, 26) and out.min() >= 0 and out.max() <= 1


@pytest.mark.slow
def test_paper_size_model_trains_one_step_and_bf16_agrees_with_fp32():
    """Paper size (15.8 M) at 256²: a full training step, and CPU bf16 autocast close to fp32 (about 1 min)."""
    torch.manual_seed(0)
    model = InstructIR(text_encoder="minilm")
    hq = torch.rand(2, 3, 256, 256)
    batch = {"lq": hq * 0.5, "hq": hq, "prompt": ["brighten", "denoise"], "task": torch.tensor([4, 0])}
    loss, _ = model.training_loss(batch)
    loss.backward()
    assert all(p.grad is not None for p in model.net.parameters() if p.requires_grad)
    with torch.no_grad():
        reference = model(batch["lq"], batch["prompt"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(batch["lq"], batch["prompt"]).float()
    assert (low - reference).abs().mean() < 2e-2


def test_absurd_prompts_are_truncated_not_fatal(tiny_instructir):
    huge = "please remove the noise " * 2000 + "🙂 ünïcödé \x00"
    out = tiny_instructir(torch.rand(1, 3, 16, 16), [huge])
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_a_nan_loss_is_returned_to_the_guard_not_raised():
    """The step itself no longer raises: ``NonFiniteGuard`` (tests/test_reliability.py) skips the step."""
    model = InstructIR(**TINY_INSTRUCTIR)
    hq = torch.rand(2, 3, 16, 16)
    batch = {"lq": hq.clone(), "hq": hq, "prompt": ["denoise", "denoise"], "task": torch.tensor([0, 0])}
    batch["hq"][0, 0, 0, 0] = float("nan")
    assert not torch.isfinite(model.training_step(batch, 0))
    assert any(type(c).__name__ == "NonFiniteGuard" for c in model.configure_callbacks())


def test_auto_encoder_is_resolved_at_build_and_the_checkpoint_keeps_the_resolved_name(tmp_path: Path):
    """A checkpoint must not switch encoder when another one (BGE) appears on disk later."""
    model = InstructIR(**{**TINY_INSTRUCTIR, "text_encoder": "auto"})
    resolved = resolve_text_encoder("auto")[0]
    assert model.hparams["text_encoder"] == resolved != "auto"
    path = tmp_path / "tiny.ckpt"
    hparams = {**model.hparams, "_class_path": "restorezoo.models.instructir.InstructIR"}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, path)
    assert torch.load(path, weights_only=True)["hyper_parameters"]["text_encoder"] == resolved
    assert RestorationModule.from_checkpoint(path).text_encoder.name == resolved


def test_a_head_trained_on_another_encoder_refuses_to_load_unless_allowed():
    source = InstructIR(**TINY_INSTRUCTIR)
    state = source.state_dict()
    state["head_encoder"] = torch.tensor(list(b"TaylorAI/bge-micro-v2") + [0] * 107, dtype=torch.uint8)
    with pytest.raises(CheckpointError) as error:
        InstructIR(**TINY_INSTRUCTIR).load_state_dict(state)
    assert "\n" not in str(error.value) and "'TaylorAI/bge-micro-v2'" in str(error.value)
    assert "allow_other_encoder" in str(error.value)
    allowed = InstructIR(**TINY_INSTRUCTIR, allow_other_encoder=True)
    allowed.load_state_dict(state)
    assert torch.equal(allowed.head.fc1.weight, source.head.fc1.weight)
    assert bytes(allowed.head_encoder[allowed.head_encoder > 0].tolist()).decode() == "all-MiniLM-L6-v2"
    InstructIR(**TINY_INSTRUCTIR).load_state_dict(source.state_dict())  # its own encoder: loads


def test_prompts_are_read_up_to_512_tokens_as_released(tiny_instructir):
    encoder = tiny_instructir.text_encoder
    assert encoder.model.max_seq_length == 512
    stem = "remove the noise " * 70  # about 210 tokens: past the old 128-token cut
    a, b = encoder([stem + "and the rain", stem + "and brighten it"])
    assert not torch.allclose(a, b), "words after token 128 must still change the embedding"


def test_init_from_starts_a_fresh_run_from_another_runs_weights(tmp_path: Path):
    source = InstructIR(**TINY_INSTRUCTIR)
    for p in source.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "5d.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, path)
    fresh = InstructIR(**TINY_INSTRUCTIR, init_from=str(path))
    assert not torch.equal(fresh.net.intro.weight, source.net.intro.weight)
    fresh._initialise_from(str(path))  # what setup("fit") does for a fresh (not resumed) run
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), source.state_dict().values()))
    torch.save({"hyper_parameters": {}}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        fresh._initialise_from(str(tmp_path / "bad.ckpt"))


def test_held_out_accuracy_is_reported_per_register_over_the_tasks_training_saw(tiny_instructir):
    from restorezoo.data.instructions import instruction_table

    model = tiny_instructir
    model.trained_intents.zero_()
    model.trained_intents[model.intents.index("rain")] = True  # as training_loss records it
    pool = model._instruction_pool(("test",))
    assert pool and {r.task for r in pool} == {"rain"} and all(r.split == "test" for r in pool)
    rows = [r for r in instruction_table() if r.split == "test" and r.task == "rain"][:40]
    rows += [r for r in instruction_table() if r.split == "test" and r.register == "general"][:5]
    scores = model.held_out_intent_accuracy(rows)
    assert set(scores) == {"all"} | {r.register for r in rows}
    predicted = model.predict_intent([r.text for r in rows])
    assert scores["all"] == pytest.approx(sum(p == r.task for p, r in zip(predicted, rows)) / len(rows))
    batch = {"lq": torch.rand(2, 3, 16, 16), "hq": torch.rand(2, 3, 16, 16), "prompt": ["a", "b"],
             "task": torch.tensor([0, -1])}
    model.training_loss(batch)
    assert model.trained_intents.tolist() == [True, False, True, False, False, False, False]


def test_cpu_inference_switches_to_channels_last_and_the_weights_still_train():
    """Lightning validates under inference_mode in the middle of a fit: the switch must not make the
    weights inference tensors, and the output is the NCHW one."""
    torch.manual_seed(0)
    net = InstructIRNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), text_dim=16)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, text = torch.rand(1, 3, 19, 22), torch.randn(1, 16)
    with torch.no_grad():
        reference = net(x, text)
    assert net.intro.weight.is_contiguous()
    with torch.inference_mode():
        fast = net(x, text)
    assert net.intro.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.is_contiguous() and torch.allclose(fast, reference, atol=1e-6)
    net(x, text).mean().backward()  # would raise if the weights had become inference tensors
    assert net.intro.weight.grad is not None
