"""What speed.py, scaling.py and sampler_steps.py share: the machine line, timing under a budget, peak memory,
MACs on meta tensors, and the zoo's models at paper size (random weights) or tiny (``--smoke``).

Honesty rules the scripts follow: every number in a table was measured unless its column says "derived";
a row whose predicted time exceeds the per-row budget (``--budget-s``) or the run's total budget is printed
as "skipped (budget)", never dropped or extrapolated. Predictions come from the model's measured seconds
per GMAC on this machine (a quick conv calibration before the first measurement).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from restorezoo.data.batch import batch_from_images
from restorezoo.inference import inference_context

NO_AUTO_TILE = 1 << 62
"""``max_pixels`` that keeps ``restore_tensor`` from tiling on its own (whole-image rows)."""


def write_report(text: str, out: str | None, default: str) -> str:
    """Print a results table and write it to ``out`` (else ``default``), creating its folder."""
    print(text)
    path = Path(out or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# ====================================================================== the machine
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def machine(device: torch.device) -> str:
    """One line naming the accelerator or CPU, the threads and the torch version."""
    cpu = f"{cpu_name()} ({os.cpu_count()} cores visible, torch threads {torch.get_num_threads()})"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}; host {cpu}; torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"{cpu}; torch {torch.__version__}"


def load_average() -> str:
    """The 1-minute load average (other processes share the CPU: timings are only as quiet as this)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` → (512, 512); ``"1920x1080"`` → (1080, 1920) as (height, width)."""
    if "x" in text.lower():
        width, height = (int(v) for v in text.lower().split("x"))
        return height, width
    return int(text), int(text)


def size_label(hw: tuple[int, int]) -> str:
    height, width = hw
    return f"{height}²" if height == width else f"{width}×{height}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ====================================================================== peak memory
class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated`` (everything allocated, weights included), or
    on CPU the growth of the process's resident set over the block, sampled every 2 ms (psutil)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._peak_rss = 0

    @property
    def label(self) -> str:
        return "peak CUDA allocated (MiB)" if self.device.type == "cuda" else "peak RSS increase (MiB, sampled)"

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        import psutil

        process = psutil.Process()
        self._base = process.memory_info().rss
        self._peak_rss = self._base

        def sample() -> None:
            while not self._stop.is_set():
                self._peak_rss = max(self._peak_rss, process.memory_info().rss)
                self._stop.wait(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self._stop.set()
        self._thread.join()
        import psutil

        self._peak_rss = max(self._peak_rss, psutil.Process().memory_info().rss)
        self.peak_mib = (self._peak_rss - self._base) / 2**20


# ====================================================================== timing under a budget
@dataclass
class Measurement:
    """Mean seconds per call over ``runs`` timed calls (after a warm-up when ``warm``), or why there is none."""

    seconds: float | None = None
    runs: int = 0
    warm: bool = False
    peak_mib: float | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.seconds is not None

    def ms(self) -> str:
        return f"{self.seconds * 1e3:.0f}" if self.seconds is not None else self.note

    def runs_label(self) -> str:
        """"3" (after a warm-up) or "1 cold" (no warm-up fitted the budget)."""
        return f"{self.runs}{'' if self.warm else ' cold'}" if self.ok else "–"

    def mib(self) -> str:
        return f"{self.peak_mib:.0f}" if self.peak_mib is not None else "–"


@dataclass
class Budget:
    """Per-row and whole-run time budgets, and this machine's measured speed per model (s/GMAC)."""

    per_row_s: float
    total_s: float
    repeats: int = 3
    prior_gmacs_per_s: float = 20.0
    started: float = field(default_factory=time.perf_counter)
    rates: dict[str, float] = field(default_factory=dict)
    share_ends: float | None = None
    part_ends: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def start_share(self, parts_left: int, first: float = 1.0) -> None:
        """Give the next part (a model) an equal share of the time left, of which its first rows may use the
        fraction ``first`` until ``rest_of_share()``; what a part leaves goes to the parts after it."""
        share = (self.total_s - self.elapsed()) / max(parts_left, 1)
        self.part_ends = time.perf_counter() + share
        self.share_ends = time.perf_counter() + first * share

    def rest_of_share(self) -> None:
        """Open the rest of the current part's share to its remaining rows."""
        if self.part_ends is not None:
            self.share_ends = self.part_ends

    def left(self) -> float:
        left = self.total_s - self.elapsed()
        if self.share_ends is not None:
            left = min(left, self.share_ends - time.perf_counter())
        return left

    def knows(self, key: str) -> bool:
        """Whether a rate was measured for ``key`` or for the same model on another path ("model/path")."""
        model = key.split("/")[0]
        return any(k.split("/")[0] == model for k in self.rates)

    def rate(self, key: str) -> float:
        """GMAC/s of ``key``: measured, else the same model's on another path, else the calibrated prior."""
        if key in self.rates:
            return self.rates[key]
        model = key.split("/")[0]
        same_model = [rate for k, rate in self.rates.items() if k.split("/")[0] == model]
        return min(same_model) if same_model else self.prior_gmacs_per_s

    def predict(self, key: str, gmacs: float | None) -> float:
        """Predicted seconds of one call of ``gmacs`` at ``key``'s rate."""
        return gmacs / self.rate(key) if gmacs else 0.0

    def calibrate(self, device: torch.device) -> float:
        """A dense 3×3 conv's GMAC/s here; models reach about a third of it (norms, memory traffic)."""
        conv = nn.Conv2d(64, 64, 3, padding=1).to(device)
        x = torch.randn(1, 64, 128, 128, device=device)
        gmacs = 64 * 64 * 9 * 128 * 128 / 1e9
        with torch.inference_mode():
            conv(x)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(3):
                conv(x)
            synchronize(device)
        rate = 3 * gmacs / (time.perf_counter() - start)
        self.prior_gmacs_per_s = rate / 3
        return rate

    def measure(
        self, fn: Callable[[], Any], device: torch.device, key: str, gmacs: float | None, repeats: int | None = None
    ) -> Measurement:
        """Time ``fn`` (warm-up + up to ``repeats`` calls) if its predicted time fits the budgets."""
        repeats = repeats or self.repeats
        predicted = self.predict(key, gmacs)
        left = self.left()
        if predicted > self.per_row_s:
            return Measurement(note=f"skipped (budget: ~{predicted:.0f} s > {self.per_row_s:.0f} s per row)")
        if predicted > left:
            return Measurement(note=f"skipped (budget: ~{predicted:.0f} s > {max(left, 0):.0f} s left of this model's share)")
        allowed = min(self.per_row_s, left)
        runs = max(1, min(repeats, int(allowed / max(predicted, 1e-9)) - 1))
        warm = predicted * (runs + 1) <= allowed
        try:
            if warm:
                fn()
                synchronize(device)
            with PeakMemory(device) as memory:
                start = time.perf_counter()
                for _ in range(runs):
                    fn()
                synchronize(device)
                seconds = (time.perf_counter() - start) / runs
        except torch.OutOfMemoryError:
            free_memory(device)
            return Measurement(note="out of memory")
        if gmacs:
            self.rates[key] = gmacs / max(seconds, 1e-9)
        return Measurement(seconds=seconds, runs=runs, warm=warm, peak_mib=memory.peak_mib)


# ====================================================================== MACs
def count_gmacs(fn: Callable[[], Any]) -> float:
    """GMACs (= FLOPs / 2) of ``fn`` by torch's FLOP counter (convs, matmuls, attention); run it on meta
    tensors to count any size for free."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2e9


def meta_copy(obj: Any, *modules: nn.Module | None) -> Any:
    """A deep copy of ``obj`` whose parameters and buffers (those of ``modules``) are weightless meta tensors:
    count MACs of a big model at any size without copying or computing anything."""
    memo: dict[int, Any] = {}
    for module in filter(None, modules):
        for tensor in (*module.parameters(), *module.buffers()):
            meta = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = nn.Parameter(meta, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
    return copy.deepcopy(obj, memo)


# ====================================================================== parameters
def parameters(*modules: nn.Module | None) -> tuple[float, float]:
    """(total, trainable) parameters in millions over distinct tensors of ``modules``."""
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        if module is not None:
            for p in module.parameters():
                seen[id(p)] = p
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total / 1e6, trainable / 1e6


# ====================================================================== the zoo's models for the benchmarks
def random_daclip() -> nn.Module:
    """DA-CLIP with open_clip's ViT-B-32 architecture and random weights (no download)."""
    from restorezoo.models.daclip import DACLIP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DACLIP(model_name="ViT-B-32", pretrained=None)
    return model.requires_grad_(False).eval()


@dataclass
class ZooModel:
    """One zoo model as the benchmarks use it: how to build it, restore with it, count it and train it.

    ``sampling``: the restore keywords (diffusion: the default/fast sampler and its steps); ``train``:
    (batch, crop) of the paper's training; ``frozen``: parts held outside the state dict (counted in the
    total parameters); ``gmacs(model, h, w)``: {"total", "step", "fixed"} counted on meta copies.
    """

    name: str
    config: str
    build: Callable[[bool], Any]
    sampling: dict[str, Any]
    train: tuple[int, int]
    prompt: str = ""
    caption: str = ""
    note: str = ""
    diffusion: bool = False
    frozen: Callable[[Any], list[nn.Module | None]] = lambda model: []

    def batch(self, lq: torch.Tensor) -> dict[str, Any]:
        return batch_from_images(lq, self.prompt, self.caption)

    def params(self, model: Any) -> tuple[float, float]:
        return parameters(model, *self.frozen(model))

    def gmacs(self, model: Any, height: int, width: int, steps: int | None = None) -> dict[str, float]:
        """{"fixed": per-image cost outside the loop, "step": one denoiser call, "total"} at steps (default
        ``sampling["steps"]``); one-pass models have step 0. Counted on meta copies of the weights."""
        steps = self.sampling.get("steps", 0) if steps is None else steps
        text_side = hasattr(model, "embed_prompts")  # InstructIR: text encoder (size-free) + image model
        meta = meta_copy(model.net, model.net) if text_side else meta_copy(model, model, *self.frozen(model))
        if hasattr(meta, "sd"):
            meta.sd._text_cache.clear()  # real cached prompt embeddings would meet meta tensors
        lq = torch.rand(1, 3, height, width, device="meta")
        with torch.no_grad():
            if text_side:
                text = count_gmacs(lambda: model.embed_prompts([self.prompt]))
                embedding = torch.zeros(1, model.head.fc1.out_features, device="meta")
                fixed = text + count_gmacs(lambda: meta(lq, embedding))
                return {"fixed": fixed, "step": 0.0, "total": fixed}
            if not self.diffusion:
                fixed = count_gmacs(lambda: meta.restore(self.batch(lq), **self.sampling))
                return {"fixed": fixed, "step": 0.0, "total": fixed}
            if hasattr(meta, "sde"):  # IR-SDE: DA-CLIP once, the U-Net per step
                degradation, content = meta.conditioning(lq)
                fixed = count_gmacs(lambda: meta.conditioning(lq))
                x = lq.clone()
                t = torch.ones(1, dtype=torch.long, device="meta")
                step = count_gmacs(lambda: meta.sampling_unet(x, lq, t, degradation, content))
                return {"fixed": fixed, "step": step, "total": fixed + steps * step}
            return self._latent_gmacs(meta, lq, steps)

    def _latent_gmacs(self, meta: Any, lq: torch.Tensor, steps: int) -> dict[str, float]:
        from restorezoo.tiling import pad_to_multiple

        padded = pad_to_multiple(lq, meta.pixel_multiple, "reflect") if lq.device.type != "meta" else lq
        holder: dict[str, Any] = {}

        def condition() -> None:
            holder["cond"] = meta.condition(self.batch(padded))
            scale = float(self.sampling.get("guidance_scale", meta.guidance_scale))
            holder["uncond"] = meta.unconditional(holder["cond"]) if scale != 1.0 else None
            holder["scale"] = scale

        cond_gmacs = count_gmacs(condition)
        factor = meta.sd.vae_scale_factor
        z = torch.randn(1, 4, padded.shape[-2] // factor, padded.shape[-1] // factor, device="meta")
        t = torch.tensor(500, device="meta")
        step = count_gmacs(
            lambda: meta.guided_prediction(
                meta.sampling_control, z, t, holder["cond"], holder["uncond"], holder["scale"]
            )
        )
        tile = self.sampling.get("decode_tile", meta.decode_tile)
        decode = count_gmacs(lambda: meta.decode(z, holder["cond"], tile_size=tile))
        return {"fixed": cond_gmacs + decode, "step": step, "total": cond_gmacs + decode + steps * step}


def _instructir(smoke: bool) -> Any:
    from restorezoo.models import InstructIR

    if smoke:
        return InstructIR(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), text_encoder="minilm")
    return InstructIR(width=32, enc_blocks=(2, 2, 4, 8), middle_blocks=4, dec_blocks=(2, 2, 2, 2), text_dim=256)


def _nafnet_daclip(smoke: bool) -> Any:
    from restorezoo.models import NAFNetDACLIP

    if smoke:
        return NAFNetDACLIP(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), daclip="tiny")
    model = NAFNetDACLIP(width=32, enc_blocks=(2, 2, 4, 8), middle_blocks=4, dec_blocks=(2, 2, 2, 2), daclip=None)
    model.set_daclip(random_daclip())
    return model


def _irsde(smoke: bool) -> Any:
    from restorezoo.models import IRSDE

    if smoke:
        return IRSDE(nf=8, ch_mult=(1, 2), T=20, daclip="tiny", ema_decay=0.999, progress=False, seed=0)
    model = IRSDE(nf=64, ch_mult=(1, 2, 4, 8), context_dim=512, ema_decay=0.999, progress=False, seed=0)
    model.set_daclip(random_daclip())
    return model


def _spire(smoke: bool) -> Any:
    from restorezoo.models import SPIRE
    from restorezoo.models.stable_diffusion import RANDOM_SD15

    return SPIRE(
        pretrained="tiny" if smoke else RANDOM_SD15, fusion="modulation", scheduler="ddim", steps=20,
        guidance_scale=3.0, seed=0, progress=False, decode_tile=96, gradient_checkpointing=True,
    )


def _diffrestorer(smoke: bool) -> Any:
    from restorezoo.models import DiffRestorer
    from restorezoo.models.stable_diffusion import RANDOM_SD15

    model = DiffRestorer(
        pretrained="tiny" if smoke else RANDOM_SD15, clip_model="tiny" if smoke else "ViT-L-14",
        clip_pretrained=None, scheduler="unipc", steps=20, seed=0, progress=False, decode_tile=96,
        gradient_checkpointing=True,
    )
    model.set_task_names(model.degradation_classes)
    return model


ZOO: dict[str, ZooModel] = {
    "instructir": ZooModel(
        "InstructIR 7D", "configs/instructir/7d.yaml", _instructir, {}, (32, 256),
        prompt="Please remove the noise from this photo",
        note="text side: the packaged all-MiniLM-L6-v2 (BGE-micro-v2 needs a download; same width)",
        frozen=lambda model: [getattr(model.text_encoder, "model", None)],
    ),
    "nafnet_daclip": ZooModel(
        "NAFNet + DA-CLIP", "configs/daclip/nafnet_daclip.yaml", _nafnet_daclip, {}, (16, 256),
        note="DA-CLIP: open_clip ViT-B-32 + controller, random weights",
        frozen=lambda model: [model.daclip],
    ),
    "irsde": ZooModel(
        "IR-SDE + DA-CLIP", "configs/daclip/irsde_universal.yaml", _irsde, {"steps": 20, "sampler": "posterior"},
        (16, 256), diffusion=True,
        note="T = 100; timed with the strided posterior sampler at 20 steps; EMA U-Net in the total",
        frozen=lambda model: [model.daclip],
    ),
    "spire": ZooModel(
        "SPIRE", "configs/spire/spire.yaml", _spire, {"steps": 20, "scheduler": "ddim", "guidance_scale": 3.0},
        (16, 512), prompt="Remove all degradation", caption="a photo of a street", diffusion=True,
        note="SD 1.5 shapes, random weights; DDIM 20 steps, CFG 3.0 (2 UNet passes per step)",
        frozen=lambda model: [model.sd],
    ),
    "diffrestorer": ZooModel(
        "Diff-Restorer", "configs/diffrestorer/stage1.yaml", _diffrestorer, {"steps": 20, "scheduler": "unipc"},
        (16, 512), diffusion=True,
        note="SD 1.5 shapes + open_clip ViT-L-14 image tower, random weights; UniPC 20 steps",
        frozen=lambda model: [model.sd, model.clip],
    ),
}
"""The models of speed.py, in table order (paper-size configs; ``build(smoke=True)`` gives tiny ones)."""


# ====================================================================== running the models
def restore(zoo: ZooModel, model: Any, lq: torch.Tensor, fast: bool, **options: Any) -> torch.Tensor:
    """``restore_tensor`` with the model's prompt and sampler; whole image unless ``tile`` is given."""
    from restorezoo.inference import restore_tensor

    options.setdefault("max_pixels", NO_AUTO_TILE)
    sampling = {**zoo.sampling, **options}
    return restore_tensor(model, lq, zoo.prompt or None, zoo.caption or None, fast=fast, **sampling)


def denoiser_step(zoo: ZooModel, model: Any, lq: torch.Tensor, fast: bool) -> Callable[[], Any]:
    """One call of a diffusion model's denoiser at ``lq``'s size, prepared (conditions computed) once."""
    device = lq.device
    with inference_context(device, fast):
        if hasattr(model, "sde"):
            degradation, content = model.conditioning(lq)
            t = torch.full((1,), model.sde.T, dtype=torch.long, device=device)
            x = lq.clone()

            def step() -> Any:
                with inference_context(device, fast):
                    return model.sampling_unet(x, lq, t, degradation, content)

            return step
        from restorezoo.tiling import pad_to_multiple

        padded = pad_to_multiple(lq, model.pixel_multiple, "reflect")
        cond = model.condition(zoo.batch(padded))
        scale = float(zoo.sampling.get("guidance_scale", model.guidance_scale))
        uncond = model.unconditional(cond) if scale != 1.0 else None
        factor = model.sd.vae_scale_factor
        z = torch.randn(1, 4, padded.shape[-2] // factor, padded.shape[-1] // factor, device=device)
        t = torch.tensor(500, device=device)

    def latent_step() -> Any:
        with inference_context(device, fast):
            return model.guided_prediction(model.sampling_control, z, t, cond, uncond, scale)

    return latent_step


def training_step(zoo: ZooModel, model: Any, batch_size: int, crop: int, device: torch.device) -> Callable[[], Any]:
    """One optimiser step (loss, backward, AdamW, EMA update) on a random batch of the paper's crop, with
    what ``restorezoo fit`` does by default (``FastPath``: channels_last for convolutional models)."""
    from restorezoo.inference import set_memory_format

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    memory_format = torch.channels_last if getattr(model, "channels_last", False) else torch.contiguous_format
    set_memory_format(model, memory_format)
    hq = torch.rand(batch_size, 3, crop, crop, device=device).contiguous(memory_format=memory_format)
    batch = {
        **zoo.batch((hq * 0.8).clamp(0, 1).contiguous(memory_format=memory_format)),
        "hq": hq,
        "task": torch.zeros(batch_size, dtype=torch.long, device=device),
        "params": [{}] * batch_size,
    }
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step() -> None:
        with autocast:
            loss, _ = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if hasattr(model, "update_ema"):
            model.update_ema()

    return step
