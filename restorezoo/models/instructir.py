"""InstructIR (Conde, Geigle, Timofte, ECCV 2024): a NAFNet U-Net steered by a written instruction.

A frozen sentence encoder embeds the instruction; a small trainable head projects it to 256-d
(L2-normalised) and classifies the intended task. Instruction Condition Blocks after every encoder
and decoder stage gate the features channel-wise with that embedding, so one network serves every
degradation and "remove the rain" and "brighten it" give different restorations of the same image.

Module and parameter names follow the released ``im_instructir-7d.pt`` / ``lm_instructir-7d.pt``
state dicts exactly (the key manifest tests/specs/instructir_official_image_model_keys.json), so the released
weights load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorezoo.data.instructions import Instruction, instruction_table
from restorezoo.data.prompts import INSTRUCTIR_TASKS
from restorezoo.encoders.text import (
    DEFAULT_TEXT_ENCODER,
    PACKAGED_MINILM,
    build_sentence_encoder,
    canonical_encoder_name,
)
from restorezoo.errors import CheckpointError
from restorezoo.metrics.accuracy import ClassAccuracy, masked_accuracy
from restorezoo.models.base import RestorationModule
from restorezoo.models.nafnet import NAFBlock, downsample, nafblocks, upsample
from restorezoo.tiling import pad_to_multiple
from restorezoo.weights import load_matching, load_state_dict, resolve_weights

DEFAULT_PROMPT = "Restore this image."
"""Used when a sample has no instruction (blind restoration)."""

_NAME_BYTES = 128
"""Length of the byte buffer that records, next to the weights, which sentence encoder the head was trained on."""


def _name_tensor(name: str) -> Tensor:
    raw = name.encode("utf-8")[:_NAME_BYTES]
    return torch.tensor(list(raw) + [0] * (_NAME_BYTES - len(raw)), dtype=torch.uint8)


def _tensor_name(tensor: Tensor) -> str:
    return bytes(int(b) for b in tensor.flatten().tolist() if b).decode("utf-8", errors="replace")


class InstructionConditionBlock(nn.Module):
    """ICB in its released form: ``f = (x·γ + β)·sigmoid(W e)``, then ``NAFBlock(f) + x``.

    The paper writes the modulation differently; the released checkpoint needs this form. γ and β
    start at zero, so at initialisation the block only adds ``NAFBlock(0)`` to its input.
    """

    def __init__(self, channels: int, text_dim: int = 256) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, channels)
        self.block = NAFBlock(channels)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor, text_embedding: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(text_embedding))[:, :, None, None]
        features = torch.addcmul(self.beta, x, self.gamma) * gate  # (x·γ + β)·gate
        return self.block(features) + x


class InstructIRNet(nn.Module):
    """The image model: NAFNet U-Net with an ICB after each encoder and decoder stage (none in the middle).

    ``forward(x, text_embedding)``: x is B×3×H×W in [0, 1] (any size; zero-padded to a multiple of
    ``2 ** len(enc_blocks)`` and cropped back), text_embedding is B×text_dim. The output is the
    global residual ``ending(features) + x``, not clamped (as released).
    """

    def __init__(
        self,
        width: int = 32,
        enc_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 4,
        dec_blocks: Sequence[int] = (2, 2, 2, 2),
        text_dim: int = 256,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(f"enc_blocks {enc_blocks} and dec_blocks {dec_blocks} need the same length")
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.enc_cond = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.dec_cond = nn.ModuleList()
        self.ups = nn.ModuleList()
        channels = width
        for count in enc_blocks:
            self.encoders.append(nafblocks(channels, count))
            self.enc_cond.append(InstructionConditionBlock(channels, text_dim))
            self.downs.append(downsample(channels))
            channels *= 2
        self.middle_blks = nafblocks(channels, middle_blocks)
        for count in dec_blocks:
            self.ups.append(upsample(channels))
            channels //= 2
            self.decoders.append(nafblocks(channels, count))
            self.dec_cond.append(InstructionConditionBlock(channels, text_dim))
        self.pad_multiple = 2 ** len(enc_blocks)

    def forward(self, x: Tensor, text_embedding: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if x.device.type == "cpu" and torch.is_inference_mode_enabled() and not torch.compiler.is_compiling():
            # CPU inference (inference_mode: restore, predict, Lightning's validation and test) in
            # channels_last: oneDNN's NHWC convolutions and LayerNorm over contiguous channels, about 1.4x
            # faster than NCHW, the same output (benchmarks/instructir_speed.py). Plain no_grad stays the
            # NCHW eager reference (restore_tensor(fast=False)).
            if not self.intro.weight.is_contiguous(memory_format=torch.channels_last):
                with torch.inference_mode(False):  # normal tensors: the weights may train afterwards
                    self.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        inp = pad_to_multiple(x, self.pad_multiple)
        feat = self.intro(inp)
        skips = []
        for encoder, condition, down in zip(self.encoders, self.enc_cond, self.downs):
            feat = condition(encoder(feat), text_embedding)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for up, decoder, condition, skip in zip(self.ups, self.decoders, self.dec_cond, reversed(skips)):
            feat = condition(decoder(up(feat) + skip), text_embedding)
        out = self.ending(feat) + inp
        return out[..., :height, :width].contiguous()


class InstructionHead(nn.Module):
    """Trainable text head on the frozen sentence embedding (keys of ``lm_instructir-7d.pt``).

    ``fc1`` projects to the image model's text width and is L2-normalised; ``fc2`` predicts the
    intended task, an auxiliary loss that makes ambiguous instructions land near their task.
    """

    def __init__(self, sentence_dim: int = 384, text_dim: int = 256, num_intents: int = 7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(sentence_dim, text_dim)
        self.fc2 = nn.Linear(text_dim, num_intents)

    def forward(self, sentence_embedding: Tensor) -> tuple[Tensor, Tensor]:
        embedding = F.normalize(self.fc1(sentence_embedding), dim=-1)
        return embedding, self.fc2(embedding)


class InstructIR(RestorationModule):
    """InstructIR as a Lightning module: L1 restoration + cross-entropy intent loss, AdamW + cosine.

    Args:
        width, enc_blocks, middle_blocks, dec_blocks, text_dim: image-model size (paper: 32, (2,2,4,8),
            4, (2,2,2,2), 256).
        text_encoder: frozen sentence encoder: ``"auto"`` (BGE-micro-v2 if on disk, else the packaged
            all-MiniLM-L6-v2), a hub id, or a local folder. ``"auto"`` is resolved when the model is
            built and the resolved name is what ``hparams`` and the checkpoint keep, so a checkpoint
            never switches encoder because another one appeared on disk. The head's encoder is also
            recorded beside the weights (``head_encoder``); loading weights whose head was trained on
            another encoder raises unless ``allow_other_encoder``.
        allow_other_encoder: load a head trained on another encoder anyway (to fine-tune it onto this one).
        register_accuracy: at each validation and test epoch, log the intent accuracy on the held-out
            instructions of the tasks training has seen, overall and per register
            (``val/heldout_intent_acc``, ``val/heldout_intent_acc/<register>``).
        eval_autocast: validate and test under the trainer's autocast (bf16-mixed in the paper configs);
            by default they run in fp32 whatever the training precision.
        init_from: a ``fit`` checkpoint whose weights a fresh run starts from (the paper's 6D fine-tunes
            5D and 7D builds on 6D); ignored when resuming.
        warm_instructions: at ``fit``, encode the training instructions of the datamodule's tasks up front in
            batches (minutes on a CPU for 7 tasks); by default each is encoded when first drawn.
        intents: task names of the intent classifier, in class order (the released 7-task order).
        intent_weight: weight of the intent cross-entropy.
        default_prompt: instruction used for samples that have none.
        lr, weight_decay, betas, min_lr, warmup_steps: see ``RestorationModule`` (paper: AdamW 5e-4, cosine).
    """

    channels_last = True
    compile_targets = ("net",)
    label_accuracy_per_benchmark = True  # ``val/<benchmark>/intent_acc`` when validating on several sets

    def __init__(
        self,
        width: int = 32,
        enc_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 4,
        dec_blocks: Sequence[int] = (2, 2, 2, 2),
        text_dim: int = 256,
        text_encoder: str = "auto",
        allow_other_encoder: bool = False,
        register_accuracy: bool = True,
        eval_autocast: bool = False,
        init_from: str | None = None,
        warm_instructions: bool = False,
        intents: Sequence[str] = INSTRUCTIR_TASKS,
        intent_weight: float = 1.0,
        default_prompt: str = DEFAULT_PROMPT,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        min_lr: float = 1e-6,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(
            lr=lr, weight_decay=weight_decay, betas=betas, min_lr=min_lr, warmup_steps=warmup_steps
        )
        self.save_hyperparameters()
        self.text_encoder = build_sentence_encoder(text_encoder)
        self.hparams["text_encoder"] = self.text_encoder.name  # resolved: "auto" is never stored
        self.allow_other_encoder = allow_other_encoder
        self.register_accuracy = register_accuracy
        self.eval_autocast = eval_autocast
        self.init_from = init_from
        self.warm_instructions = warm_instructions
        self.register_buffer("head_encoder", _name_tensor(self.text_encoder.name))
        self.intents = list(intents)
        # Which intents training has seen: the held-out accuracy is measured on those tasks only.
        self.register_buffer("trained_intents", torch.zeros(len(self.intents), dtype=torch.bool))
        self.intent_weight = intent_weight
        self.default_prompt = default_prompt
        self.net = InstructIRNet(width, enc_blocks, middle_blocks, dec_blocks, text_dim)
        self.head = InstructionHead(self.text_encoder.dim, text_dim, len(self.intents))
        # Maps the datamodule's task indices to intent classes (-1 = unknown; ZooModule.setup builds it from
        # the datamodule's task names); identity by default.
        self.register_buffer("task_to_class", torch.arange(len(self.intents)), persistent=False)
        # ``val/intent_acc`` (over images), counted in ``_eval_step`` and logged per epoch by ZooModule's hooks
        self.label_accuracy = ClassAccuracy(self.intents, name="intent_acc", per_class=False)

    def _class_of_task(self, task: str) -> int:
        """A task name's intent class, by name (-1: not an intent)."""
        return self.intents.index(task) if task in self.intents else -1

    def setup(self, stage: str) -> None:
        """Align the datamodule's task vocabulary with the intent classes by name (``ZooModule.setup``), and
        at ``fit`` initialise from ``init_from`` and warm the instruction pool when asked."""
        super().setup(stage)
        if stage == "fit" and self.init_from:
            self._initialise_from(self.init_from)
        if stage == "fit" and self.warm_instructions:  # encode the pool once, batched (about 2x faster)
            self.text_encoder.warm([row.text for row in self._instruction_pool(("train",))])

    def _initialise_from(self, path: str) -> None:
        """Start from another InstructIR run's weights (6D from 5D, 7D from 6D, as in the paper).

        Runs in ``setup("fit")``: a resumed run restores its own checkpoint afterwards, so the
        initialisation only ever shapes a fresh start. The text head's encoder check applies.
        """
        from restorezoo.weights import load_checkpoint

        checkpoint = load_checkpoint(Path(path))
        state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
        if state is None:
            raise CheckpointError(f"init_from {path} is not a restorezoo fit checkpoint (no 'state_dict')")
        load_matching(self, state, path)

    def _instruction_pool(self, splits: Sequence[str] = ("test",)) -> list[Instruction]:
        """restorezoo's instructions (generated + hand-written) of the tasks this model was trained on
        (``trained_intents``), else of the datamodule's tasks that are intents."""
        taught = [name for name, seen in zip(self.intents, self.trained_intents.tolist()) if seen]
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        names = taught or [n for n in (getattr(datamodule, "task_names", None) or []) if n in self.intents]
        return [row for row in instruction_table() if row.task in names and row.split in splits]

    def held_out_intent_accuracy(self, rows: Sequence[Instruction] | None = None) -> dict[str, float]:
        """Intent accuracy on the held-out instructions (new templates and new words), overall and per register.

        ``rows`` default: the held-out instructions of the datamodule's tasks. Keys: ``"all"`` and each
        register present (``technical``, ``casual``, ..., ``handwritten``).
        """
        rows = list(self._instruction_pool(("test",)) if rows is None else rows)
        if not rows:
            return {}
        self.text_encoder.warm([r.text for r in rows])  # batched, and the same batches every time
        predicted: list[str] = []
        for start in range(0, len(rows), 256):
            predicted += self.predict_intent([r.text for r in rows[start : start + 256]])
        hits: dict[str, list[bool]] = {"all": []}
        for row, guess in zip(rows, predicted):
            hit = guess == row.task
            hits["all"].append(hit)
            hits.setdefault(row.register, []).append(hit)
        return {k: sum(v) / len(v) for k, v in hits.items()}

    def _log_held_out(self, stage: str) -> None:
        if not self.register_accuracy or self._trainer is None or self.trainer.sanity_checking:
            return
        for register, accuracy in self.held_out_intent_accuracy().items():
            name = f"{stage}/heldout_intent_acc" + ("" if register == "all" else f"/{register}")
            # Every rank computes the same value from the same strings: nothing to reduce.
            self.log(name, accuracy, rank_zero_only=True)

    def _log_task_mean(self, stage: str) -> None:
        """``<stage>/psnr_task_mean``: the mean over tasks of each task's PSNR (the paper's configs select
        checkpoints on it, so that no task's benchmark outweighs the others by its size)."""
        if self._trainer is None or self.trainer.sanity_checking:
            return
        rows: list[dict[str, Any]] = []
        for callback in self.trainer.callbacks:
            if type(callback).__name__ == "RestorationMetrics":
                rows = list(callback.val_rows if stage == "val" else callback.rows)
        per_task: dict[str, list[float]] = {}
        for row in rows:
            value = row.get("psnr")
            if row.get("task") not in (None, "", "all") and isinstance(value, (int, float)):
                per_task.setdefault(str(row["task"]), []).append(float(value))
        if per_task:
            means = [sum(v) / len(v) for v in per_task.values()]
            self.log(f"{stage}/psnr_task_mean", sum(means) / len(means), rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_held_out("val")
        self._log_task_mean("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_held_out("test")
        self._log_task_mean("test")

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Refuse (one line) a text head trained on another sentence encoder, unless ``allow_other_encoder``."""
        key = prefix + "head_encoder"
        if key in state_dict:
            trained_on, ours = _tensor_name(state_dict[key]), self.text_encoder.name
            if canonical_encoder_name(trained_on) != ours:
                if not self.allow_other_encoder:
                    raise CheckpointError(
                        f"this InstructIR text head was trained on the sentence encoder '{trained_on}', but the model "
                        f"uses '{ours}': build it with text_encoder: {trained_on}, or pass allow_other_encoder: true "
                        "to fine-tune the head onto the new encoder"
                    )
                state_dict[key] = self.head_encoder.detach().clone()  # from now on the head belongs to `ours`
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ text side
    def embed_prompts(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(B×text_dim normalised embedding, B×intents logits) for a list of instructions."""
        texts = [p.strip() or self.default_prompt for p in prompts]
        sentence = self.text_encoder(texts, device=self.device).to(self.head.fc1.weight.dtype)
        return self.head(sentence)

    def intent_targets(self, task: Tensor) -> Tensor:
        """Datamodule task ids → intent class ids, -1 where unknown (ignored by the loss)."""
        return self.task_classes(task)

    def predict_intent(self, prompts: Sequence[str]) -> list[str]:
        """The task each instruction is classified as."""
        with torch.no_grad():
            _, logits = self.embed_prompts(prompts)
        return [self.intents[i] for i in logits.argmax(-1).tolist()]

    # ------------------------------------------------------------------ RestorationModule API
    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        embedding, logits = self.embed_prompts(batch["prompt"])
        restored = self.net(batch["lq"], embedding)
        l1 = F.l1_loss(restored, batch["hq"])
        targets = self.intent_targets(batch["task"])
        # Masked means instead of `if valid.any()` / boolean indexing: no host-device sync per step.
        # A batch without known tasks contributes zero cross-entropy (and logs zero accuracy).
        valid = (targets >= 0).float()
        counts = torch.zeros(self.trained_intents.shape, dtype=torch.long, device=targets.device)
        self.trained_intents |= counts.index_add_(0, targets.clamp(min=0), (targets >= 0).long()) > 0
        count = valid.sum().clamp(min=1)
        ce = (F.cross_entropy(logits, targets.clamp(min=0), reduction="none") * valid).sum() / count
        accuracy = masked_accuracy(logits.argmax(-1), targets)
        loss = l1 + self.intent_weight * ce
        return loss, {"l1": l1.detach(), "intent_ce": ce.detach(), "intent_acc": accuracy}

    def _restore_with_intent(self, batch: dict[str, Any], clamp: bool = True) -> tuple[Tensor, Tensor]:
        """(restored B×3×H×W, in [0, 1] when ``clamp``; intent logits): one text pass serves both."""
        embedding, logits = self.embed_prompts(batch["prompt"])
        restored = self.net(batch["lq"], embedding)
        return (restored.clamp(0, 1) if clamp else restored), logits

    def restore(self, batch: dict[str, Any], **sampling: Any) -> Tensor:
        return self._restore_with_intent(batch)[0]

    def _eval_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        # The raw output goes to the metric callback: each benchmark's protocol says whether to clamp
        # (BasicSR-exact: yes; InstructIR's release: no). Predictions written to disk are clamped.
        predicting = self._trainer is not None and self.trainer.predicting
        if self.eval_autocast:
            pred, logits = self._restore_with_intent(batch, clamp=predicting)
        else:  # fp32 even under a bf16-mixed trainer: test numbers must not depend on the training precision
            with torch.autocast(device_type=self.device.type, enabled=False):
                fp32 = {**batch, "lq": batch["lq"].float()}
                pred, logits = self._restore_with_intent(fp32, clamp=predicting)
        if self._trainer is not None and not self.trainer.predicting:
            self.update_label_accuracy(logits.argmax(-1), self.intent_targets(batch["task"]), batch)
        return {"pred": pred}

    # ------------------------------------------------------------------ released weights
    @classmethod
    def from_official(
        cls,
        image_weights: str | Path,
        lm_weights: str | Path | None = None,
        text_encoder: str = "TaylorAI/bge-micro-v2",
        **kwargs: Any,
    ) -> InstructIR:
        """Load the released ``im_instructir-7d.pt`` (and ``lm_instructir-7d.pt``) strictly.

        Paths may be local files, files under ``$RESTOREZOO_WEIGHTS``, or hub files such as
        ``marcosv/InstructIR/im_instructir-7d.pt``. Without ``lm_weights`` the head stays random:
        only use that for fine-tuning.
        """
        model = cls(text_encoder=text_encoder, **kwargs)
        released = canonical_encoder_name(DEFAULT_TEXT_ENCODER)
        if lm_weights is not None and model.text_encoder.name != released and not model.allow_other_encoder:
            raise CheckpointError(
                f"the released text head {lm_weights} was trained on '{released}', but the model uses "
                f"'{model.text_encoder.name}': use text_encoder={released!r}, or allow_other_encoder=True to fine-tune"
            )
        image_state = load_state_dict(resolve_weights(image_weights, what="InstructIR image weights"))
        load_matching(model.net, image_state, image_weights)
        if lm_weights is not None:
            head_state = load_state_dict(resolve_weights(lm_weights, what="InstructIR text-head weights"))
            load_matching(model.head, head_state, lm_weights)
        return model.eval()


__all__ = ["InstructIR", "InstructIRNet", "InstructionConditionBlock", "InstructionHead", "PACKAGED_MINILM"]
