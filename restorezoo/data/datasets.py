"""Datasets that yield the batch contract: paired folders, manifests, synthetic pairs, the bundled sample.

All of them share one base, ``RestorationDataset``, which owns what is the same everywhere:
training crops and flips, the prompt rule, per-index determinism for evaluation and the sample
layout. A dataset only says how to get its i-th (LQ, HQ, task, prompt, caption).

Prompt rule, per sample: an explicit ``prompt`` argument wins; then the dataset's own text (a
manifest column); then, when the task is known, an instruction from the bank (a random training
instruction in training, a deterministic held-out one in evaluation); else "" (blind).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from restorezoo.data.batch import make_sample
from restorezoo.data.captions import read_coco_captions, read_daclip_captions
from restorezoo.data.degrade import build_degradation
from restorezoo.data.io import list_images, load_image
from restorezoo.data.manifest import read_manifest_rows
from restorezoo.data.pairing import KeyFn, match_pairs, require_dir, universal_folders
from restorezoo.data.prompts import INSTRUCTIR_TASKS, canonical_task, instructions
from restorezoo.data.sample_photos import SAMPLE_CAPTIONS, SAMPLE_PHOTOS, center_crop, sample_photo
from restorezoo.data.samplers import SeededIndex
from restorezoo.errors import DataError, ImageLoadError
from restorezoo.metrics.protocol import RGB, MetricProtocol

MAX_SKIPPED_IN_A_ROW = 8
"""Unreadable training images in a row after which the dataset gives up (the data is broken, not one file)."""


@dataclass
class Item:
    """What a concrete dataset provides for one index, before cropping and prompting."""

    hq: Tensor | None
    lq: Tensor | None = None
    task: str = ""
    prompt: str = ""
    caption: str = ""
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    degradation: Any = None
    """A ``Degradation`` to apply to the (cropped) HQ when ``lq`` is None."""


def _random_resized_box(
    shape: Sequence[int], scale: tuple[float, float], generator: torch.Generator
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop as torchvision's ``RandomResizedCrop`` samples it:
    area fraction uniform in ``scale``, log-uniform aspect in [3/4, 4/3], ten tries, then the centre."""
    height, width = int(shape[0]), int(shape[1])
    area = height * width
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        draws = torch.rand(2, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * draws[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    ratio = width / height
    if ratio < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif ratio > 4 / 3:
        h, w = height, round(height * (4 / 3))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _shorter_side_centre_crop(image: Tensor, size: int) -> Tensor:
    """CLIP's test geometry: the shorter side to ``size`` (bicubic, antialiased), then the central size×size."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    if new != (height, width):
        image = torch.nn.functional.interpolate(image[None], size=new, mode="bicubic", antialias=True)[0].clamp(0, 1)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return image[:, top : top + size, left : left + size]


class RestorationDataset(Dataset):
    """Base of every restorezoo dataset.

    ``small_images`` (class default "pad"): how a training image smaller than the patch is handled:
    "pad" (reflect, or replicate when under half the patch) or "resize" (shorter side up to the patch).

    Args:
        benchmark: name of this set in metric tables (unique within a stage).
        protocol: how the metric callback scores it (RGB, uint8, no crop by default).
        prompt: a fixed instruction for every sample (overrides everything else).
        caption: a fixed semantic caption for every sample.
        repeat: iterate the data this many times per epoch (small sets, many random crops).
        seed: base seed of the per-index degradations in evaluation.

    Every concrete dataset takes these too: ``benchmark`` by name (its default is the dataset's own),
    the others through ``**common`` (configs name them as usual; LightningCLI resolves them here).
    """

    small_images = "pad"

    def __init__(
        self,
        benchmark: str = "",
        protocol: MetricProtocol | None = None,
        prompt: str | None = None,
        caption: str | None = None,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        self.benchmark = benchmark or type(self).__name__.lower()
        self.protocol = protocol or RGB
        self.prompt = prompt
        self.caption = caption
        self.repeat = max(int(repeat), 1)
        self.seed = seed
        self.training = False
        self.skipped: set[str] = set()
        self.patch_size: int | None = None
        self.resize: int | None = None
        self.resize_scale: tuple[float, float] | None = None
        self.flip = False

    def configure(
        self,
        training: bool,
        patch_size: int | None = None,
        flip: bool = True,
        resize: int | None = None,
        resize_scale: Sequence[float] | None = None,
    ) -> RestorationDataset:
        """Set by the DataModule: random crops (or a whole-image resize)/flips and random prompts in training,
        full images otherwise (or, with ``resize`` at eval, CLIP's shorter-side resize and centre crop).

        ``resize_scale`` (training): a random resized crop covering that fraction of the area
        (torchvision's ``RandomResizedCrop`` sampling, aspect 3/4–4/3) instead of a squash.
        """
        self.training = training
        self.patch_size = patch_size if training else None
        self.resize = resize
        self.resize_scale = None if resize_scale is None or not training else (
            float(resize_scale[0]), float(resize_scale[1])
        )
        self.flip = flip and training
        return self

    # -- subclasses implement these two
    def num_items(self) -> int:
        raise NotImplementedError

    def item(self, index: int, generator: torch.Generator) -> Item:
        raise NotImplementedError

    # -- shared machinery
    def __len__(self) -> int:
        return self.num_items() * (self.repeat if self.training else 1)

    def _generator(self, index: int) -> torch.Generator:
        generator = torch.Generator()
        if self.training:  # the sampler's per-sample seed, else fresh randomness from the global RNG
            seed = getattr(index, "seed", None)
            generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, ()).item()))
        else:
            generator.manual_seed(self.seed * 1_000_003 + index)
        return generator

    def _crop_and_flip(self, images: list[Tensor], generator: torch.Generator) -> list[Tensor]:
        if self.resize is not None:  # DA-CLIP: whole images to the CLIP input (bicubic)
            if self.resize_scale is not None:
                top, left, height, width = _random_resized_box(images[0].shape[-2:], self.resize_scale, generator)
                images = [im[:, top : top + height, left : left + width] for im in images]
            elif not self.training:
                images = [_shorter_side_centre_crop(im, self.resize) for im in images]
            size = (self.resize, self.resize)
            images = [
                torch.nn.functional.interpolate(im[None], size=size, mode="bicubic", antialias=True)[0].clamp(0, 1)
                if tuple(im.shape[-2:]) != size
                else im
                for im in images
            ]
        elif self.patch_size is not None:
            size = self.patch_size
            height, width = images[0].shape[-2:]
            if min(height, width) < size and self.small_images == "resize":
                # shorter side to the patch size (bicubic, antialiased), aspect kept: no mirrored rows
                factor = size / min(height, width)
                target = (max(size, round(height * factor)), max(size, round(width * factor)))
                images = [
                    torch.nn.functional.interpolate(im[None], size=target, mode="bicubic", antialias=True)[0].clamp(0, 1)
                    for im in images
                ]
                height, width = target
            if height < size or width < size:
                pad = (0, max(size - width, 0), 0, max(size - height, 0))
                mode = "reflect" if height > size // 2 and width > size // 2 else "replicate"
                images = [torch.nn.functional.pad(im[None], pad, mode=mode)[0] for im in images]
                height, width = images[0].shape[-2:]
            top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
            images = [im[:, top : top + size, left : left + size] for im in images]
        if self.flip:
            flips = torch.rand(2, generator=generator)
            if flips[0] < 0.5:
                images = [im.flip(-1) for im in images]
            if flips[1] < 0.5:
                images = [im.flip(-2) for im in images]
        return [im.contiguous() for im in images]

    def _choose_prompt(self, item: Item, index: int, generator: torch.Generator) -> str:
        if self.prompt is not None:
            return self.prompt
        if item.prompt:
            return item.prompt
        task = item.task.split("+")[0] if item.task else ""
        if task in INSTRUCTIR_TASKS:
            bank = instructions(task, "train" if self.training else "test")
            pick = int(torch.randint(0, len(bank), (1,), generator=generator)) if self.training else index
            return bank[pick % len(bank)]
        return ""

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample at ``index``. In training an unreadable file is reported (once) and the next
        sample taken instead, so one corrupt image out of a million does not end a days-long run;
        evaluation raises, since a metric table must not silently lose images."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.benchmark} ({len(self)} samples)")
        if not self.training:
            return self._sample(index)
        for _ in range(MAX_SKIPPED_IN_A_ROW):
            try:
                return self._sample(index)
            except ImageLoadError as error:
                if str(error) not in self.skipped:
                    self.skipped.add(str(error))
                    warnings.warn(
                        f"{error}; skipped in training (`restorezoo data check` lists every bad file)", stacklevel=2
                    )
                seed = getattr(index, "seed", None)
                following = (int(index) + 1) % len(self)
                index = SeededIndex(following, seed + 1) if seed is not None else following
        raise DataError(
            f"{self.benchmark}: {MAX_SKIPPED_IN_A_ROW} unreadable images in a row (last: {sorted(self.skipped)[-1]}); "
            "run `restorezoo data check --config ...`"
        )

    def _sample(self, index: int) -> dict[str, Any]:
        generator = self._generator(index)
        base_index = index % self.num_items()
        item = self.item(base_index, generator)
        params = dict(item.params)
        if item.lq is None:
            if item.hq is None or item.degradation is None:
                raise DataError(f"{self.benchmark}[{base_index}] has neither an LQ image nor a degradation")
            (hq,) = self._crop_and_flip([item.hq], generator)
            lq, applied = item.degradation(hq[None], generator=generator)
            lq = lq[0].clamp(0, 1)
            params.update(applied[0])
            item.task = item.task or str(applied[0].get("task", ""))
        elif item.hq is not None:
            if item.lq.shape != item.hq.shape:
                raise DataError(
                    f"{self.benchmark}: pair '{item.name}' differs in size: LQ {tuple(item.lq.shape[1:])} "
                    f"vs HQ {tuple(item.hq.shape[1:])}"
                )
            lq, hq = self._crop_and_flip([item.lq, item.hq], generator)
        else:
            (lq,) = self._crop_and_flip([item.lq], generator)
            hq = None
        sample = make_sample(
            lq,
            hq,
            prompt=self._choose_prompt(item, base_index, generator),
            caption=self.caption if self.caption is not None else item.caption,
            task=item.task,
            params=params,
            name=item.name,
            benchmark=self.benchmark,
            index=index if not self.training else base_index,
        )
        if self.training:  # the model's own randomness (diffusion t and noise) for this sample: see sample_generators
            sample["seed"] = int(torch.randint(0, 2**62, (), generator=generator))
        elif self.caption is not None and self.caption != item.caption:
            sample["reference_caption"] = item.caption  # CLIP-T scores the image's own caption
        return sample


def _task_name(task: str | None) -> str:
    """Canonical task of a name, synonym or DA-CLIP folder word ("snowy" → "snow"); "" for none."""
    return canonical_task(task) if task else ""


class PairedFolder(RestorationDataset):
    """An LQ folder and an HQ folder matched by file stem (or another ``match`` mode, see ``pair_keys``).

    Without ``hq_dir`` it yields LQ images only (prediction on real photos). ``max_pairs`` keeps a
    random subset of that many pairs, fixed by ``subset_seed`` (InstructIR trains on 2000 of RESIDE
    OTS's ~72k hazy images).
    """

    def __init__(
        self,
        lq_dir: str,
        hq_dir: str | None = None,
        task: str | None = None,
        match: str | KeyFn = "stem",
        benchmark: str = "",
        max_pairs: int | None = None,
        subset_seed: int = 0,
        **common: Any,
    ) -> None:
        super().__init__(benchmark or Path(lq_dir).parent.name, **common)
        lq_path = require_dir(lq_dir, "LQ")
        if hq_dir is None:
            self.pairs: list[tuple[Path, Path | None]] = [(p, None) for p in list_images(lq_path)]
        else:
            self.pairs = list(match_pairs(lq_path, require_dir(hq_dir, "HQ"), match))
        if max_pairs is not None and max_pairs < len(self.pairs):
            keep = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(subset_seed))[:max_pairs]
            self.pairs = [self.pairs[i] for i in sorted(keep.tolist())]
        self.task = _task_name(task)

    def num_items(self) -> int:
        return len(self.pairs)

    def item(self, index: int, generator: torch.Generator) -> Item:
        lq_path, hq_path = self.pairs[index]
        hq = load_image(hq_path) if hq_path is not None else None
        return Item(hq=hq, lq=load_image(lq_path), task=self.task, name=lq_path.stem)


class Manifest(RestorationDataset):
    """Pairs listed in a JSONL or CSV file with columns ``lq`` (required), ``hq``, ``prompt``, ``caption``, ``task``.

    Relative paths resolve against ``root`` (default: the manifest's folder). Rows are validated up
    front so a typo fails at start-up with its line number, not hours into training.
    """

    def __init__(
        self,
        path: str,
        root: str | None = None,
        benchmark: str = "",
        **common: Any,
    ) -> None:
        manifest = Path(path).expanduser()
        super().__init__(benchmark or manifest.stem, **common)
        if not manifest.is_file():
            raise DataError(f"manifest not found: {manifest}")
        base = Path(root).expanduser() if root else manifest.parent
        self.rows = read_manifest_rows(manifest)
        for line, row in enumerate(self.rows, start=2 if manifest.suffix.lower() == ".csv" else 1):
            if not row.get("lq"):
                raise DataError(f"{manifest}:{line}: row has no 'lq' path")
            for key in ("lq", "hq"):
                if row.get(key):
                    resolved = (base / row[key]).expanduser()
                    if not resolved.is_file():
                        raise DataError(f"{manifest}:{line}: {key} file not found: {resolved}")
                    row[key] = str(resolved)
            row["task"] = _task_name(row.get("task") or None)
        if not self.rows:
            raise DataError(f"manifest {manifest} has no rows")

    def num_items(self) -> int:
        return len(self.rows)

    def item(self, index: int, generator: torch.Generator) -> Item:
        row = self.rows[index]
        hq = load_image(row["hq"]) if row.get("hq") else None
        return Item(
            hq=hq,
            lq=load_image(row["lq"]),
            task=row.get("task", ""),
            prompt=row.get("prompt", ""),
            caption=row.get("caption", ""),
            name=Path(row["lq"]).stem,
        )


class Synthetic(RestorationDataset):
    """Clean images from a folder, degraded on the fly by a pipeline (``restorezoo.data.degrade``).

    ``degradation`` is a spec for ``build_degradation``: a name ("noise"), a dict with arguments
    ({"name": "noise", "sigmas": [25]}) or a list (applied in order). Evaluation is deterministic per
    index (seeded by ``seed`` + index), training draws fresh parameters every time.
    """

    def __init__(
        self,
        hq_dir: str,
        degradation: Any,
        task: str | None = None,
        benchmark: str = "",
        **common: Any,
    ) -> None:
        super().__init__(benchmark or Path(hq_dir).name, **common)
        self.files = list_images(require_dir(hq_dir, "HQ"))
        self.degradation = build_degradation(degradation)
        self.task = _task_name(task) if task else ""

    def num_items(self) -> int:
        return len(self.files)

    def item(self, index: int, generator: torch.Generator) -> Item:
        path = self.files[index]
        return Item(hq=load_image(path), task=self.task, name=path.stem, degradation=self.degradation)


class Sample(RestorationDataset):
    """The embedded sample: scikit-image's photos, split into train/val/test, degraded on the fly.

    Every photo appears once per task (``len = photos × tasks``); the table then has one row per task.
    Needs nothing but the installed package, so quickstarts and tests run offline.

    Args:
        split: "train", "val" or "test".
        tasks: degradation specs (``build_degradation``: "noise", "gaussian_blur", {"name": "jpeg", ...}),
            one sample per photo per spec; the sample's task is the degradation's task ("gaussian_blur" → "blur").
            List a spec twice to draw it twice as often.
        max_side: evaluation images are centre-cropped to at most this many pixels per side (keeps CPU
            quickstarts fast); training crops come from the full photo.
        photo_captions: give each photo its caption (``SAMPLE_CAPTIONS``) as the semantic prompt, for
            the latent-diffusion quickstarts on ``mini-sd`` (whose prior learnt the train photos' ones).
    """

    def __init__(
        self,
        split: str = "train",
        tasks: Sequence[str | dict[str, Any]] = ("noise", "blur", "lowlight"),
        max_side: int | None = 256,
        photo_captions: bool = False,
        benchmark: str = "sample",
        **common: Any,
    ) -> None:
        super().__init__(benchmark, **common)
        self.photo_captions = bool(photo_captions)
        if split not in SAMPLE_PHOTOS:
            raise DataError(f"Sample split must be one of {sorted(SAMPLE_PHOTOS)}, got '{split}'")
        if not tasks:
            raise DataError("Sample needs at least one task")
        self.split = split
        self.names = SAMPLE_PHOTOS[split]
        self.degradations = [build_degradation(t) for t in tasks]
        self.tasks = [d.task for d in self.degradations]
        self.max_side = max_side

    @cached_property
    def photos(self) -> list[Tensor]:
        return [sample_photo(name) for name in self.names]

    def num_items(self) -> int:
        return len(self.names) * len(self.tasks)

    def item(self, index: int, generator: torch.Generator) -> Item:
        photo_index, task_index = divmod(index, len(self.tasks))
        hq = self.photos[photo_index]
        if not self.training:
            hq = center_crop(hq, self.max_side)
        task = self.tasks[task_index]
        return Item(
            hq=hq,
            task=task,
            name=f"{self.names[photo_index]}_{task}",
            degradation=self.degradations[task_index],
            caption=SAMPLE_CAPTIONS[self.names[photo_index]] if self.photo_captions else "",
        )


def _folder_task(name: str) -> str:
    try:
        return _task_name(name)
    except ValueError:
        return name.strip().lower()


class UniversalFolder(RestorationDataset):
    """DA-CLIP's "universal" layout: ``<root>/<split>/<degradation>/{LQ,GT}``, one task per folder.

    Each folder's task is its degradation word mapped to restorezoo's names (``noisy`` → ``noise``,
    see ``DACLIP_DEGRADATIONS``; unknown folders keep their own name). LQ and GT pair by stem.

    Args:
        root: the folder holding ``train/`` and ``val/``.
        split: "train" or "val".
        degradations: folder names to read (default: every folder with an ``LQ`` sub-folder).
        caption_file: DA-CLIP's CSV (``daclip_train.csv``: filepath, "{caption}: {degradation}") giving
            each LQ image its clean caption.
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        degradations: Sequence[str] | None = None,
        caption_file: str | None = None,
        benchmark: str = "",
        **common: Any,
    ) -> None:
        super().__init__(benchmark or f"universal_{split}", **common)
        self.entries: list[tuple[Path, Path, str, str]] = []
        self.folders = universal_folders(root, split, degradations)
        for folder in self.folders:
            task = _folder_task(folder.name)
            pairs = match_pairs(require_dir(folder / "LQ", "LQ"), require_dir(folder / "GT", "GT"))
            self.entries.extend((lq, hq, task, folder.name) for lq, hq in pairs)
        self.captions = read_daclip_captions(caption_file) if caption_file else {}

    def num_items(self) -> int:
        return len(self.entries)

    def item(self, index: int, generator: torch.Generator) -> Item:
        lq, hq, task, folder = self.entries[index]
        return Item(
            hq=load_image(hq),
            lq=load_image(lq),
            task=task,
            caption=self.captions.get((folder, lq.name), ""),
            name=lq.stem,
            params={"degradation": folder},
        )


class CaptionedFolder(RestorationDataset):
    """Clean images with captions (MS-COCO ``captions_*.json``), degraded on the fly.

    SPIRE and Diff-Restorer condition on what the clean image shows; this supplies that text. In
    training every sample draws one of its image's captions at random and, with probability
    ``caption_dropout`` (SPIRE: 0.1), an empty caption so the model also learns to restore without
    one (classifier-free guidance). Evaluation always uses the first caption, never drops it.

    Args:
        image_dir: folder of clean images (``COCO/val2017``).
        captions_json: COCO-style JSON; only the images it lists are used.
        degradation: a ``build_degradation`` spec applied per sample as in ``Synthetic``; None keeps the
            clean image as LQ (for pipelines that degrade on the accelerator, ``gpu_degradation``).
        caption_dropout: probability of an empty caption in training.
        max_images: use only the first N listed images (SPIRE scores 3000 COCO val images).
        task: task name of every sample (default: the degradation's own).
        small_images: "resize" (default): an image whose shorter side is under the training patch is
            resized up (shorter side to the patch, bicubic) before the random crop; COCO's 640×480 photos
            at SPIRE's 512² would otherwise put reflected rows into nearly every crop. "pad" reflects.
    """

    def __init__(
        self,
        image_dir: str,
        captions_json: str,
        degradation: Any = None,
        caption_dropout: float = 0.0,
        max_images: int | None = None,
        task: str | None = None,
        benchmark: str = "",
        small_images: str = "resize",
        **common: Any,
    ) -> None:
        super().__init__(benchmark or Path(image_dir).name, **common)
        if small_images not in ("resize", "pad"):
            raise DataError(f"small_images must be 'resize' or 'pad', got {small_images!r}")
        self.small_images = small_images
        if not 0.0 <= caption_dropout <= 1.0:
            raise DataError(f"caption_dropout must be in [0, 1], got {caption_dropout}")
        folder = require_dir(image_dir, "image")
        listed = read_coco_captions(captions_json)
        missing = [name for name in listed if not (folder / name).is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} images listed in {captions_json} are not in {folder}: {', '.join(missing[:5])}"
            )
        self.entries = [(folder / name, texts) for name, texts in listed.items()][:max_images]
        if not self.entries:
            raise DataError(f"{captions_json} lists no images")
        self.degradation = build_degradation("clean" if degradation is None else degradation)
        self.caption_dropout = float(caption_dropout)
        self.task = _task_name(task)

    def num_items(self) -> int:
        return len(self.entries)

    def _pick_caption(self, texts: list[str], generator: torch.Generator) -> str:
        if not self.training:
            return texts[0] if texts else ""
        text = texts[int(torch.randint(0, len(texts), (1,), generator=generator))] if texts else ""
        if self.caption_dropout > 0 and float(torch.rand((), generator=generator)) < self.caption_dropout:
            return ""
        return text

    def item(self, index: int, generator: torch.Generator) -> Item:
        path, texts = self.entries[index]
        return Item(
            hq=load_image(path),
            task=self.task,
            caption=self._pick_caption(texts, generator),
            name=path.stem,
            degradation=self.degradation,
        )
