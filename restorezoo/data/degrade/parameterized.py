"""SPIRE's parameterized degradation pipeline and its restoration prompts.

SPIRE (Qi et al., ECCV 2024, Sec. 4.1, Tab. 2) trains half of its iterations on a four-stage pipeline
(downsampling, Gaussian blur, Gaussian noise, JPEG) where every stage is skipped independently with
p 0.5, and tells the restorer what was done through a *restoration prompt*: the applied stages "appended
following the order of the image degradations", either by type only ("Deblur") or with their parameters
("Deblur with sigma 0.3;").

What follows the paper's own examples (Tab. 2's body is missing from the text, so these are all there is):

- the clause forms: "Upsample to 6.0x;" (App. D), "Deblur with sigma 2.9;", "Denoise with sigma 0.24"
  (Sec. 4.4, noise σ on the [0, 1] scale: 0.06 → 0.24);
- the stage order they imply: "Upsample… Deblur…", "Upsample…Deblur…Dejpeg" (Fig. 9) and "deblur…
  denoise…" (Sec. 1): downsample → blur → noise → JPEG;
- ranges that contain every example value: blur σ 0.3 … 3.5 (0.3, 2.9, 3.0, 3.5), ×6.0, noise 0.06 … 0.24.

restorezoo's choices where the paper is silent: the range bounds themselves (blur σ [0.3, 4.0], scale
[1.5, 6.0], noise σ [0.02, 0.25], JPEG quality [20, 90]), the JPEG clause "Dejpeg with quality 40;",
the printed precision (σ_blur and scale to 0.1, σ_noise to 0.01), and that a downsampled image is
resized back up (bicubic) so that every stage and the restorer work at the input size. The previous
order (blur first, "Upsample with scale 2.0;", noise on 0-255) is ``Parameterized(order=LEGACY_ORDER,
noise_scale="255")``; :func:`parse_restoration_prompt` still reads its prompts. Because the model reads
the numbers, values are rounded to their printed precision when drawn, so the prompt states exactly what
the image went through.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from restorezoo.data.degrade.base import Degradation, as_range, draw_seeds, sampling_device, uniform
from restorezoo.data.degrade.pipelines import JPEG, BicubicSR, GaussianBlur, GaussianNoise
from restorezoo.data.prompts import SPIRE_BLIND_PROMPT

__all__ = [
    "LEGACY_ORDER",
    "STAGES",
    "STAGE_WORDS",
    "Parameterized",
    "parse_restoration_prompt",
    "restoration_prompt",
]

Params = dict[str, Any]

STAGES: tuple[str, ...] = ("downsample", "blur", "noise", "jpeg")
"""The four stages in SPIRE's order ("Upsample… Deblur… Denoise… Dejpeg"), applied and written in it."""
LEGACY_ORDER: tuple[str, ...] = ("blur", "downsample", "noise", "jpeg")
"""restorezoo's former order (Real-ESRGAN's blur → resize → noise → JPEG), kept as an option."""

STAGE_WORDS: dict[str, tuple[str, str, int]] = {
    "blur": ("Deblur", "sigma", 1),
    "downsample": ("Upsample", "scale", 1),
    "noise": ("Denoise", "sigma", 2),
    "jpeg": ("Dejpeg", "quality", 0),
}
"""stage → (prompt verb, parameter name in the stage's params, printed decimals; 0 means an integer)."""
_VERB_TO_STAGE = {verb.lower(): stage for stage, (verb, _, _) in STAGE_WORDS.items()}
_BLIND = SPIRE_BLIND_PROMPT.lower()


def _bernoulli(p: float, n: int, generator: torch.Generator | None) -> list[bool]:
    return (torch.rand(n, generator=generator, device=sampling_device(generator)) < p).cpu().tolist()


class Parameterized(Degradation):
    """SPIRE's downsample → blur → noise → JPEG pipeline, each stage skipped with ``skip_prob``.

    Every sample keeps at least one stage (when all four are skipped, one is drawn uniformly and
    applied): a restoration prompt then always names a degradation, and clean inputs are left to
    :class:`~restorezoo.data.degrade.pipelines.Identity`. ``allow_clean=True`` keeps all-skipped
    samples clean instead, with an empty stage list and prompt ``""``.

    Params per sample: ``"stages"`` (applied stages in order, each ``{"stage": name, <param>: value}``,
    noise with a ``"seed"``), ``"with_values"`` (whether the prompt carries the numbers, drawn with
    ``values_prob``; 1.0 for SPIRE's Tab. 1 test prompts) and ``"prompt"``, the restoration prompt.

    Args:
        order: the stage order (default SPIRE's :data:`STAGES`; :data:`LEGACY_ORDER` is restorezoo's former one).
        noise_unit: ``"1"`` (SPIRE: σ on the [0, 1] scale, printed to 0.01, "Denoise with sigma 0.24") or
            ``"255"`` (the denoising literature's 0-255 scale, printed to 0.1; give ``noise_sigma`` in it).
        stages: the stages drawn from (default all four, SPIRE); the others are never applied. Not the
            paper's: ``["blur"]`` isolates the deblur prompt for a restoration-strength study.

    The downsample stage resizes back up to the input size with bicubic, since restorezoo's models
    restore at the input size. Each stage is applied by its single-stage degradation of
    :mod:`~restorezoo.data.degrade.pipelines` (:meth:`stage_degradations`); this class draws the
    parameters and writes the prompt.
    """

    task = "parameterized"

    def __init__(
        self,
        blur_sigma: float | Sequence[float] = (0.3, 4.0),
        scale: float | Sequence[float] = (1.5, 6.0),
        noise_sigma: float | Sequence[float] = (0.02, 0.25),
        jpeg_quality: int | Sequence[int] = (20, 90),
        skip_prob: float = 0.5,
        values_prob: float = 0.5,
        allow_clean: bool = False,
        order: Sequence[str] = STAGES,
        noise_unit: str = "1",
        stages: Sequence[str] | None = None,
    ):
        for name, p in (("skip_prob", skip_prob), ("values_prob", values_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        self.blur_sigma = as_range(blur_sigma, "blur_sigma")
        self.scale = as_range(scale, "scale")
        if self.scale[0] < 1:
            raise ValueError(f"scale must be >= 1 (a downsampling factor), got {scale!r}")
        if str(noise_unit) not in ("1", "255"):
            raise ValueError(f"noise_unit must be '1' (σ on [0, 1], SPIRE) or '255', got {noise_unit!r}")
        self.noise_unit = str(noise_unit)
        self.noise_sigma = as_range(noise_sigma, "noise_sigma")
        if self.noise_unit == "1" and self.noise_sigma[1] > 1:
            raise ValueError(f"noise_sigma {noise_sigma!r} is on the [0, 1] scale with noise_unit '1' "
                             "(SPIRE: 'Denoise with sigma 0.24'); give noise_unit: '255' for 0-255 values")
        lo, hi = as_range(jpeg_quality, "jpeg_quality")
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {jpeg_quality!r}")
        self.jpeg_quality = (int(lo), int(hi))
        self.skip_prob = float(skip_prob)
        self.values_prob = float(values_prob)
        self.allow_clean = bool(allow_clean)
        order = tuple(order)
        if sorted(order) != sorted(STAGES):
            raise ValueError(f"order must be a permutation of {', '.join(STAGES)}, got {order!r}")
        self.order = order
        stages = tuple(order if stages is None else stages)
        if not stages or set(stages) - set(STAGES) or len(set(stages)) != len(stages):
            raise ValueError(f"stages must be distinct names among {', '.join(STAGES)}, got {stages!r}")
        self.stages = tuple(s for s in order if s in stages)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> list[Params]:
        n = batch_size
        # draws in a fixed stage order whatever ``order`` is, so one stage's draw never shifts another's
        keep = {stage: [not s for s in _bernoulli(self.skip_prob, n, generator)] for stage in LEGACY_ORDER}
        forced = torch.randint(len(self.stages), (n,), generator=generator, device=sampling_device(generator)).tolist()
        # values are drawn for every sample (used or not) for the same reason
        blur = [round(v, 1) for v in uniform(self.blur_sigma, n, generator)]
        scale = [round(v, 1) for v in uniform(self.scale, n, generator)]
        noise_decimals = 2 if self.noise_unit == "1" else 1
        noise = [round(v, noise_decimals) for v in uniform(self.noise_sigma, n, generator)]
        quality = torch.randint(
            self.jpeg_quality[0],
            self.jpeg_quality[1] + 1,
            (n,),
            generator=generator,
            device=sampling_device(generator),
        ).tolist()
        seeds = draw_seeds(n, generator)
        with_values = _bernoulli(self.values_prob, n, generator)
        out = []
        for i in range(n):
            chosen = [s for s in self.stages if keep[s][i]]
            if not chosen and not self.allow_clean:
                chosen = [self.stages[forced[i]]]
            stages: list[Params] = []
            for s in chosen:
                if s == "blur":
                    stages.append({"stage": s, "sigma": blur[i]})
                elif s == "downsample":
                    stages.append({"stage": s, "scale": scale[i]})
                elif s == "noise":
                    entry: Params = {"stage": s, "sigma": noise[i], "seed": seeds[i]}
                    if self.noise_unit == "255":
                        entry["unit"] = 255
                    stages.append(entry)
                else:
                    stages.append({"stage": s, "quality": int(quality[i])})
            p: Params = {"task": self.task, "stages": stages, "with_values": bool(with_values[i])}
            p["prompt"] = restoration_prompt(p)
            out.append(p)
        return out

    def stage_degradations(self) -> dict[str, Degradation]:
        """The single-stage degradation that applies each stage (only their ``apply`` is used). The blur's
        kernel size follows the configured σ range, so a sample blurs the same in any batch."""
        return {"downsample": BicubicSR(), "blur": GaussianBlur(self.blur_sigma), "noise": GaussianNoise(), "jpeg": JPEG()}

    def apply(self, x: Tensor, params: Sequence[Params]) -> Tensor:
        self._check_len(x, params)
        out = x.clone()
        degradations = self.stage_degradations()
        for stage in self.order:
            rows, values = [], []
            for i, p in enumerate(params):
                for st in p["stages"]:
                    if st["stage"] == stage:
                        rows.append(i)
                        values.append(_stage_params(st))
            if rows:
                idx = torch.tensor(rows, device=x.device)
                out[idx] = degradations[stage].apply(out[idx], values).to(out.dtype)
        return out


def _stage_params(st: Params) -> Params:
    """One applied stage's params as its single-stage degradation takes them (noise σ on 0-255)."""
    if st["stage"] != "noise":
        return st
    # SPIRE's prompts give σ on [0, 1]; GaussianNoise takes the 0-255 σ
    return {**st, "sigma": float(st["sigma"]) * (1 if st.get("unit", 1) == 255 else 255)}


def _format_value(value: float, decimals: int) -> str:
    return str(int(round(value))) if decimals == 0 else f"{float(value):.{decimals}f}"


def _clause(st: Params, with_values: bool) -> str:
    name = st["stage"]
    if name not in STAGE_WORDS:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    verb, key, decimals = STAGE_WORDS[name]
    if not with_values:
        return verb
    if name == "downsample":  # SPIRE, App. D: "Upsample to 6.0x;"
        return f"{verb} to {_format_value(st[key], decimals)}x;"
    if name == "noise" and st.get("unit", 1) == 255:
        decimals = 1
    return f"{verb} with {key} {_format_value(st[key], decimals)};"


def restoration_prompt(params: Params | Sequence[Params], with_values: bool | None = None) -> str:
    """Write SPIRE's restoration prompt for the applied stages, in order.

    ``params`` is one sample's :class:`Parameterized` params (or just its ``"stages"`` list).
    Type only: ``"Upsample, Deblur, Denoise, Dejpeg"``; with values, as the paper writes them:
    ``"Upsample to 6.0x; Deblur with sigma 2.9; Denoise with sigma 0.24; Dejpeg with quality 40;"``
    (scale and blur σ to 0.1, noise σ on [0, 1] to 0.01, quality an integer). ``with_values=None``
    follows the sample's recorded ``"with_values"``. No stages give ``""``.
    """
    if isinstance(params, dict):
        stages = params.get("stages", [])
        if with_values is None:
            with_values = bool(params.get("with_values", False))
    else:
        stages = list(params)
        with_values = bool(with_values)
    parts = [_clause(st, bool(with_values)) for st in stages]
    return " ".join(parts) if with_values else ", ".join(parts)


_NUMBER = r"([-+]?\d+(?:\.\d+)?|[-+]?\.\d+)"
_CLAUSE = re.compile(
    rf"^\s*([A-Za-z]+)(?:\s+(?:with\s+([A-Za-z]+)\s+{_NUMBER}|to\s+(?:[x×]\s*{_NUMBER}|{_NUMBER}\s*[x×]?)))?\s*$",
    re.IGNORECASE,
)


def parse_restoration_prompt(text: str) -> list[Params]:
    """Read a restoration prompt back into its stages: ``[{"stage": "blur", "sigma": 2.9}, ...]``.

    Reads every form SPIRE shows: "Upsample to 6.0x; Deblur with sigma 2.9;" (App. D), "Denoise with
    sigma 0.24" (Sec. 4.4), type-only lists with commas or the paper's ellipses ("Upsample… Deblur…
    Dejpeg", "deblur… denoise…"), any case, and the blind "Remove all degradation" (no stage: ``[]``),
    as well as restorezoo's former "Upsample with scale 2.0;". Type-only clauses give stages without
    values. An unknown verb or parameter raises ``ValueError``.
    """
    if text.strip().rstrip(".;").strip().lower() in (_BLIND, _BLIND + "s"):
        return []
    clauses = [c for c in re.split(r"[;,]|…|\.\.\.|\.(?=\s+[A-Za-z])|\.$", text) if c.strip()]
    out: list[Params] = []
    for clause in clauses:
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(f"cannot read restoration-prompt clause {clause.strip()!r} in {text!r}")
        verb, key, value, to_x, to_value = m.groups()
        stage = _VERB_TO_STAGE.get(verb.lower())
        if stage is None:
            verbs = ", ".join(v for v, _, _ in STAGE_WORDS.values())
            raise ValueError(f"unknown restoration verb {verb!r} in {text!r}; known verbs: {verbs}")
        entry: Params = {"stage": stage}
        _, expected, decimals = STAGE_WORDS[stage]
        if to_x is not None or to_value is not None:
            if stage != "downsample":
                raise ValueError(f"only Upsample takes 'to <scale>x', not {verb!r}, in {text!r}")
            entry["scale"] = float(to_x if to_x is not None else to_value)
        elif key is not None:
            if key.lower() != expected:
                raise ValueError(f"{verb} takes '{expected}', not {key!r}, in {text!r}")
            entry[expected] = int(round(float(value))) if decimals == 0 else float(value)
        out.append(entry)
    return out
