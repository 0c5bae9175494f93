"""SPIRE's parameterized degradation pipeline and its restoration prompts.

SPIRE (Qi et al., ECCV 2024, Sec. 3) trains half of its iterations on a four-stage pipeline — Gaussian
blur, downsampling, Gaussian noise, JPEG — where every stage is skipped independently with p 0.5, and
tells the restorer what was done through a *restoration prompt*: the applied stages in order, either
by type only ("Deblur, Denoise") or with their parameters ("Deblur with sigma 3.0; Denoise with sigma
25.0;"). Because the model reads the numbers, the values are rounded to their printed precision when
they are drawn, so the prompt states exactly what the image went through.

The paper gives no sampling ranges; the defaults below are restorezoo's own choice, spanning mild to
strong degradations of each kind.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from restorezoo.data.degrade import ops
from restorezoo.data.degrade.pipelines import Degradation, _device, _pair, _seeds, _uniform

__all__ = [
    "STAGES",
    "Parameterized",
    "parse_restoration_prompt",
    "restoration_prompt",
]

Params = dict[str, Any]

STAGES: tuple[str, ...] = ("blur", "downsample", "noise", "jpeg")
"""The four stages, in the order they are applied and written in the prompt."""

# stage -> (prompt verb, parameter name, printed decimals; 0 means an integer)
_STAGE_WORDS: dict[str, tuple[str, str, int]] = {
    "blur": ("Deblur", "sigma", 1),
    "downsample": ("Upsample", "scale", 1),
    "noise": ("Denoise", "sigma", 1),
    "jpeg": ("Dejpeg", "quality", 0),
}
_VERB_TO_STAGE = {verb.lower(): stage for stage, (verb, _, _) in _STAGE_WORDS.items()}


def _bernoulli(p: float, n: int, generator: torch.Generator | None) -> list[bool]:
    return (torch.rand(n, generator=generator, device=_device(generator)) < p).cpu().tolist()


class Parameterized(Degradation):
    """SPIRE's blur → downsample → noise → JPEG pipeline, each stage skipped with ``skip_prob``.

    Every sample keeps at least one stage (when all four are skipped, one is drawn uniformly and
    applied): a restoration prompt then always names a degradation, and clean inputs are left to
    :class:`~restorezoo.data.degrade.pipelines.Identity`. ``allow_clean=True`` keeps all-skipped
    samples clean instead, with an empty stage list and prompt ``""``.

    Params per sample: ``"stages"`` (applied stages in order, each ``{"stage": name, <param>: value}``,
    noise with a ``"seed"``), ``"with_values"`` (whether the prompt carries the numbers, drawn with
    ``values_prob``) and ``"prompt"``, the restoration prompt written from them.

    The downsample stage resizes back up to the input size with bicubic, since restorezoo's models
    restore at the input size; noise sigma is on the 0-255 scale.
    """

    task = "parameterized"

    def __init__(
        self,
        blur_sigma: float | Sequence[float] = (0.5, 4.0),
        scale: float | Sequence[float] = (1.5, 4.0),
        noise_sigma: float | Sequence[float] = (5.0, 50.0),
        jpeg_quality: int | Sequence[int] = (20, 90),
        skip_prob: float = 0.5,
        values_prob: float = 0.5,
        allow_clean: bool = False,
    ):
        for name, p in (("skip_prob", skip_prob), ("values_prob", values_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        self.blur_sigma = _pair(blur_sigma, "blur_sigma")
        self.scale = _pair(scale, "scale")
        if self.scale[0] < 1:
            raise ValueError(f"scale must be >= 1 (a downsampling factor), got {scale!r}")
        self.noise_sigma = _pair(noise_sigma, "noise_sigma")
        lo, hi = _pair(jpeg_quality, "jpeg_quality")
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {jpeg_quality!r}")
        self.jpeg_quality = (int(lo), int(hi))
        self.skip_prob = float(skip_prob)
        self.values_prob = float(values_prob)
        self.allow_clean = bool(allow_clean)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        n = batch_size
        keep = {stage: [not s for s in _bernoulli(self.skip_prob, n, generator)] for stage in STAGES}
        forced = torch.randint(len(STAGES), (n,), generator=generator, device=_device(generator)).tolist()
        # values are drawn for every sample (used or not) so one stage's draw never shifts another's
        blur = [round(v, 1) for v in _uniform(self.blur_sigma, n, generator)]
        scale = [round(v, 1) for v in _uniform(self.scale, n, generator)]
        noise = [round(v, 1) for v in _uniform(self.noise_sigma, n, generator)]
        quality = torch.randint(
            self.jpeg_quality[0],
            self.jpeg_quality[1] + 1,
            (n,),
            generator=generator,
            device=_device(generator),
        ).tolist()
        seeds = _seeds(n, generator)
        with_values = _bernoulli(self.values_prob, n, generator)
        out = []
        for i in range(n):
            chosen = [s for s in STAGES if keep[s][i]]
            if not chosen and not self.allow_clean:
                chosen = [STAGES[forced[i]]]
            stages: list[Params] = []
            for s in chosen:
                if s == "blur":
                    stages.append({"stage": s, "sigma": blur[i]})
                elif s == "downsample":
                    stages.append({"stage": s, "scale": scale[i]})
                elif s == "noise":
                    stages.append({"stage": s, "sigma": noise[i], "seed": seeds[i]})
                else:
                    stages.append({"stage": s, "quality": int(quality[i])})
            p: Params = {"task": self.task, "stages": stages, "with_values": bool(with_values[i])}
            p["prompt"] = restoration_prompt(p)
            out.append(p)
        return out

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        out = x.clone()
        for stage in STAGES:
            rows, values = [], []
            for i, p in enumerate(params):
                for st in p["stages"]:
                    if st["stage"] == stage:
                        rows.append(i)
                        values.append(st)
            if not rows:
                continue
            idx = torch.tensor(rows, device=x.device)
            sub = out[idx]
            if stage == "blur":
                sigmas = [float(v["sigma"]) for v in values]
                # the kernel follows the configured range, so a sample blurs the same in any batch
                size = 2 * math.ceil(3 * max([self.blur_sigma[1], *sigmas])) + 1
                sub = ops.gaussian_blur(sub, sigmas, kernel_size=size)
            elif stage == "downsample":
                sub = ops.bicubic_down_up(sub, [float(v["scale"]) for v in values])
            elif stage == "noise":
                gens = [torch.Generator().manual_seed(int(v["seed"])) for v in values]
                sub = ops.add_gaussian_noise(sub, [float(v["sigma"]) for v in values], gens)
            else:
                sub = ops.jpeg(sub, [int(v["quality"]) for v in values])
            out[idx] = sub.to(out.dtype)
        return out


def _format_value(value: float, decimals: int) -> str:
    return str(int(round(value))) if decimals == 0 else f"{float(value):.{decimals}f}"


def restoration_prompt(params: Params | Sequence[Params], with_values: bool | None = None) -> str:
    """Write SPIRE's restoration prompt for the applied stages, in order.

    ``params`` is one sample's :class:`Parameterized` params (or just its ``"stages"`` list).
    Type only: ``"Deblur, Upsample, Denoise, Dejpeg"``; with values: ``"Deblur with sigma 3.0; Upsample
    with scale 2.0; Denoise with sigma 25.0; Dejpeg with quality 40;"`` (floats to one decimal, quality
    as an integer). ``with_values=None`` follows the sample's recorded ``"with_values"``. No stages
    give ``""``.
    """
    if isinstance(params, dict):
        stages = params.get("stages", [])
        if with_values is None:
            with_values = bool(params.get("with_values", False))
    else:
        stages = list(params)
        with_values = bool(with_values)
    parts = []
    for st in stages:
        name = st["stage"]
        if name not in _STAGE_WORDS:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
        verb, key, decimals = _STAGE_WORDS[name]
        parts.append(f"{verb} with {key} {_format_value(st[key], decimals)};" if with_values else verb)
    return " ".join(parts) if with_values else ", ".join(parts)


_CLAUSE = re.compile(r"^\s*([A-Za-z]+)(?:\s+with\s+([A-Za-z]+)\s+([-+]?\d+(?:\.\d+)?))?\s*$", re.IGNORECASE)


def parse_restoration_prompt(text: str) -> list[Params]:
    """Read a restoration prompt back into its stages: ``[{"stage": "blur", "sigma": 3.0}, ...]``.

    The inverse of :func:`restoration_prompt` for both forms (type-only clauses give stages without
    values), so conditioning or evaluation code can recover what a prompt asks for. Verbs are
    case-insensitive; an unknown verb or parameter raises ``ValueError``.
    """
    clauses = [c for c in re.split(r"[;,]", text) if c.strip()]
    out: list[Params] = []
    for clause in clauses:
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(f"cannot read restoration-prompt clause {clause.strip()!r} in {text!r}")
        verb, key, value = m.groups()
        stage = _VERB_TO_STAGE.get(verb.lower())
        if stage is None:
            verbs = ", ".join(v for v, _, _ in _STAGE_WORDS.values())
            raise ValueError(f"unknown restoration verb {verb!r} in {text!r}; known verbs: {verbs}")
        entry: Params = {"stage": stage}
        if key is not None:
            _, expected, decimals = _STAGE_WORDS[stage]
            if key.lower() != expected:
                raise ValueError(f"{verb} takes '{expected}', not {key!r}, in {text!r}")
            entry[expected] = int(round(float(value))) if decimals == 0 else float(value)
        out.append(entry)
    return out
