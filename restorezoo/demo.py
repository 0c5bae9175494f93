"""``restorezoo demo``: a local web app (Gradio) to show the zoo's restorers on a photo.

Upload a photo or pick one of the embedded sample photos (degraded on the fly), choose a
checkpoint, give the model the text it takes, and compare input and output with a before/after
slider. What the page asks for follows the model family:

- InstructIR: a free-form instruction ("remove the noise, please");
- SPIRE: a restoration prompt ("Deblur with sigma 3.0"; empty = blind) and a caption of the content;
- DA-CLIP-driven restorers (IR-SDE, NAFNet + DA-CLIP) and Diff-Restorer: no text; the degradation
  their DA-CLIP / prompt processor predicts is shown instead;
- diffusion models (IR-SDE, SPIRE, Diff-Restorer): sampler steps and seed, with a progress bar.

The app binds to 127.0.0.1, never opens a public share link and sends no analytics, so it runs
offline with the quickstart checkpoints. Inference goes through ``inference.restore_tensor``, as
``restorezoo restore`` does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from restorezoo.errors import RestoreZooError, first_line

if TYPE_CHECKING:
    import gradio as gr

    from restorezoo.models.base import RestorationModule

SAMPLE_TASKS = ("noise", "blur", "lowlight")
"""Degradations of the sample photos offered as examples (one photo each)."""


@dataclass(frozen=True)
class Controls:
    """The inputs the page shows for one model family."""

    family: str
    instruction: bool = False  # InstructIR: the instruction is the whole conditioning (§3)
    prompt_and_caption: bool = False  # SPIRE: restoration prompt + semantic caption (§3.2)
    degradation: bool = False  # DA-CLIP / Diff-Restorer: the degradation is predicted from the image
    sampler: bool = False  # diffusion: steps and seed
    max_steps: int = 200
    default_steps: int = 20
    default_seed: int = 0


def controls_for(model: torch.nn.Module) -> Controls:
    """What to ask the user for, by model class (the family decides which text the model reads)."""
    from restorezoo.models import IRSDE, SPIRE, DiffRestorer, DiffRestorerDecoder, InstructIR, NAFNetDACLIP

    steps = int(getattr(model, "steps", None) or 20)
    seed = getattr(model, "seed", None)
    seed = 0 if seed is None else int(seed)
    if isinstance(model, InstructIR):
        return Controls("InstructIR", instruction=True)
    if isinstance(model, SPIRE):
        return Controls("SPIRE", prompt_and_caption=True, sampler=True, default_steps=steps, default_seed=seed)
    if isinstance(model, IRSDE):
        return Controls(
            "IR-SDE", degradation=True, sampler=True, max_steps=model.sde.T, default_steps=steps, default_seed=seed
        )
    if isinstance(model, NAFNetDACLIP):
        return Controls("NAFNet + DA-CLIP", degradation=True)
    if isinstance(model, DiffRestorerDecoder):
        stage1 = model.stage1
        steps, seed = int(stage1.steps or 20), 0 if stage1.seed is None else int(stage1.seed)
        return Controls("Diff-Restorer", degradation=True, sampler=True, default_steps=steps, default_seed=seed)
    if isinstance(model, DiffRestorer):
        return Controls("Diff-Restorer", degradation=True, sampler=True, default_steps=steps, default_seed=seed)
    # A restorer the demo does not know: offer a prompt, and the sampler when it has one.
    return Controls(type(model).__name__, instruction=True, sampler=hasattr(model, "steps"), default_steps=steps)


def degradation_predictor(model: torch.nn.Module) -> Callable[[Tensor], list[str]] | None:
    """``predict_degradation(images) -> list[str]`` of the part that reads the degradation, or None.

    IR-SDE and NAFNet + DA-CLIP ask their frozen DA-CLIP (absent when trained unconditioned, as in the
    IR-SDE quickstart); Diff-Restorer asks its own prompt processor's classifier head (§3.2).
    """
    from restorezoo.models import DiffRestorerDecoder

    if isinstance(model, DiffRestorerDecoder):
        model = model.stage1
    for owner in (model, getattr(model, "daclip", None)):
        predict = getattr(owner, "predict_degradation", None)
        if callable(predict):
            return predict
    return None


def default_checkpoints(root: str | Path = ".") -> list[Path]:
    """The quickstart runs' ``last.ckpt`` files under ``root/runs`` (what ``restorezoo fit`` writes)."""
    return sorted(Path(root).glob("runs/*/checkpoints/last.ckpt"))


def _label(source: str, taken: set[str]) -> str:
    path = Path(source)
    if path.name == "last.ckpt" and path.parent.name == "checkpoints":
        label = path.parent.parent.name
    elif path.suffix in (".ckpt", ".safetensors", ".pt", ".pth"):
        label = path.stem
    else:
        label = path.name or source
    unique, index = label, 2
    while unique in taken:
        unique, index = f"{label} ({index})", index + 1
    return unique


class ModelShelf:
    """The demo's checkpoints by label, each loaded (onto ``device``) the first time it is chosen."""

    def __init__(self, sources: Sequence[str | Path], device: str = "auto") -> None:
        if not sources:
            raise RestoreZooError(
                "no checkpoints: pass --ckpt (a fit checkpoint, an export folder or .safetensors) "
                "or run a quickstart fit first (runs/*/checkpoints/last.ckpt)"
            )
        self.device = device
        self.sources: dict[str, str] = {}
        for source in sources:
            self.sources[_label(str(source), set(self.sources))] = str(source)
        self._loaded: dict[str, RestorationModule] = {}

    @property
    def labels(self) -> list[str]:
        return list(self.sources)

    def get(self, label: str) -> RestorationModule:
        if label not in self._loaded:
            if label not in self.sources:
                raise RestoreZooError(f"unknown model '{label}'; choose one of {', '.join(self.sources)}")
            from restorezoo import load_model
            from restorezoo.inference import pick_device

            model = load_model(self.sources[label])
            self._loaded[label] = model.to(pick_device(self.device)).eval()
        return self._loaded[label]


def sample_photos(folder: str | Path, tasks: Sequence[str] = SAMPLE_TASKS) -> list[Path]:
    """Write one degraded embedded sample photo per task into ``folder`` (the page's examples)."""
    from restorezoo.data import Sample
    from restorezoo.data.io import save_image

    data = Sample("test", tasks=list(tasks)).configure(training=False)
    paths: list[Path] = []
    seen_photos: set[str] = set()
    seen_tasks: set[str] = set()
    for index in range(len(data)):
        item = data[index]
        photo, task = str(item["name"]).rsplit("_", 1) if "_" in str(item["name"]) else (item["name"], "")
        if photo in seen_photos or task in seen_tasks:
            continue
        seen_photos.add(photo)
        seen_tasks.add(task)
        paths.append(save_image(item["lq"], Path(folder) / f"{item['name']}.png"))
    return paths


def restore_file(
    model: torch.nn.Module,
    path: str | Path,
    text: str = "",
    caption: str = "",
    sampling: dict[str, Any] | None = None,
) -> tuple[Tensor, Tensor, str | None]:
    """(input, restored, predicted degradation) for an image file, converted to RGB [0, 1] on load."""
    from restorezoo.data.io import load_image
    from restorezoo.inference import restore_tensor

    image = load_image(path)
    degradation = None
    predict = degradation_predictor(model)
    if predict is not None:
        device = next(model.parameters()).device
        owner = getattr(predict, "__self__", None)
        if isinstance(owner, torch.nn.Module):  # a DA-CLIP is not a registered submodule: model.to() skips it
            owner.to(device)
        with torch.inference_mode():
            degradation = predict(image[None].to(device))[0]
    restored = restore_tensor(model, image, text, caption, **(sampling or {}))
    if restored.shape[-2:] != image.shape[-2:]:
        raise RestoreZooError(f"the model returned {tuple(restored.shape[-2:])} for a {tuple(image.shape[-2:])} input")
    return image, restored, degradation


def _import_gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, before gradio reads it
    try:
        import gradio
    except ImportError:
        raise RestoreZooError("the demo needs Gradio: pip install 'restorezoo[demo]'") from None
    return gradio


def _describe(controls: Controls, source: str) -> str:
    asks = (
        "an instruction" if controls.instruction
        else "a restoration prompt and a caption" if controls.prompt_and_caption
        else "no text (the degradation is predicted from the photo)" if controls.degradation
        else "no text"
    )  # fmt: skip
    sampler = "; sampler steps and seed" if controls.sampler else ""
    return f"**{controls.family}** (`{source}`) takes {asks}{sampler}."


def build_demo(
    sources: Sequence[str | Path],
    device: str = "auto",
    examples: bool = True,
    workdir: str | Path | None = None,
) -> gr.Blocks:
    """The Gradio app for ``sources`` (anything ``restorezoo.load_model`` reads); the first loads now.

    ``workdir`` receives the sample photos and the results (a temporary folder, removed at exit, by
    default). Errors reach the page as one-line messages, never as a crash of the app.
    """
    gr = _import_gradio()

    from restorezoo.data.io import save_image

    shelf = ModelShelf(sources, device)
    first = shelf.labels[0]
    initial = controls_for(shelf.get(first))  # a bad checkpoint fails here, in one line, before serving
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="restorezoo-demo-")
        atexit.register(shutil.rmtree, workdir, True)
    workdir = Path(workdir)
    photos = sample_photos(workdir / "samples") if examples else []

    def visibility(controls: Controls, label: str) -> list[Any]:
        return [
            gr.update(visible=controls.instruction),
            gr.update(visible=controls.prompt_and_caption),
            gr.update(visible=controls.prompt_and_caption),
            gr.update(visible=controls.degradation, value=""),
            gr.update(visible=controls.sampler, maximum=controls.max_steps, value=controls.default_steps),
            gr.update(visible=controls.sampler, value=controls.default_seed),
            gr.update(value=_describe(controls, shelf.sources[label])),
        ]

    def choose(label: str) -> list[Any]:
        try:
            controls = controls_for(shelf.get(label))
        except Exception as error:
            raise gr.Error(f"cannot load {label}: {first_line(error)}") from None
        return visibility(controls, label)

    def run(
        label: str,
        image_path: str | None,
        instruction: str,
        prompt: str,
        caption: str,
        steps: float,
        seed: float,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 - Gradio's documented idiom
    ) -> tuple[Any, Any, str, str]:
        if not image_path:
            raise gr.Error("upload a photo or pick a sample photo first")
        try:
            model = shelf.get(label)
            controls = controls_for(model)
            text = instruction if controls.instruction else prompt if controls.prompt_and_caption else ""
            sampling = {"steps": int(steps), "seed": int(seed), "progress": True} if controls.sampler else {}
            progress(0, desc=f"restoring with {label}")
            start = time.perf_counter()
            image, restored, degradation = restore_file(
                model, image_path, text, caption if controls.prompt_and_caption else "", sampling
            )
            seconds = time.perf_counter() - start
            out = Path(tempfile.mkdtemp(dir=workdir))
            before = save_image(image, out / "input.png")
            after = save_image(restored, out / f"{Path(image_path).stem}_restored.png")
        except gr.Error:
            raise
        except Exception as error:  # bad file, bad prompt, out of memory: one line on the page
            raise gr.Error(first_line(error)) from None
        height, width = image.shape[-2:]
        device_name = next(model.parameters()).device
        status = f"{width}×{height} px restored in {seconds:.2f} s on {device_name}"
        return (str(before), str(after)), gr.update(value=str(after), visible=True), degradation or "", status

    with gr.Blocks(title="restorezoo demo", analytics_enabled=False) as demo:
        gr.Markdown("# restorezoo: prompt-driven image restoration")
        with gr.Row():
            with gr.Column(scale=1):
                model_box = gr.Dropdown(shelf.labels, value=first, label="Model / checkpoint", elem_id="model")
                info = gr.Markdown(_describe(initial, shelf.sources[first]), elem_id="model-info")
                image_box = gr.Image(
                    type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Input photo",
                    elem_id="input-image", height=320,
                )  # fmt: skip
                if photos:
                    gr.Examples([[str(p)] for p in photos], inputs=[image_box], label="Sample photos (degraded)")
                instruction = gr.Textbox(
                    label="Instruction", placeholder="e.g. remove the noise, please", elem_id="instruction",
                    visible=initial.instruction,
                )  # fmt: skip
                prompt = gr.Textbox(
                    label="Restoration prompt", placeholder="e.g. Deblur with sigma 3.0 (empty: blind)",
                    elem_id="prompt", visible=initial.prompt_and_caption,
                )  # fmt: skip
                caption = gr.Textbox(
                    label="Caption", placeholder="what the clean photo shows, e.g. a cat on a sofa",
                    elem_id="caption", visible=initial.prompt_and_caption,
                )  # fmt: skip
                with gr.Row():
                    steps = gr.Slider(
                        1, initial.max_steps, value=initial.default_steps, step=1, label="Sampler steps",
                        elem_id="steps", visible=initial.sampler,
                    )  # fmt: skip
                    seed = gr.Number(
                        value=initial.default_seed, precision=0, label="Seed", elem_id="seed", visible=initial.sampler
                    )
                run_button = gr.Button("Restore", variant="primary", elem_id="run")
            with gr.Column(scale=1):
                result = gr.ImageSlider(
                    label="Before / after", type="filepath", format="png", elem_id="result", interactive=False
                )
                degradation = gr.Textbox(
                    label="Predicted degradation", interactive=False, elem_id="degradation",
                    visible=initial.degradation,
                )  # fmt: skip
                status = gr.Markdown(elem_id="status")
                download = gr.DownloadButton("Download result (PNG)", visible=False, elem_id="download")
        model_box.change(
            choose, inputs=[model_box], outputs=[instruction, prompt, caption, degradation, steps, seed, info]
        )
        run_button.click(
            run,
            inputs=[model_box, image_box, instruction, prompt, caption, steps, seed],
            outputs=[result, download, degradation, status],
        )
    return demo


def launch(
    sources: Sequence[str | Path],
    host: str = "127.0.0.1",
    port: int | None = None,
    device: str = "auto",
    examples: bool = True,
    block: bool = True,
) -> gr.Blocks:
    """Build and serve the demo on ``host:port`` (no share link); ``block=False`` returns once it serves."""
    gr = _import_gradio()
    workdir = tempfile.mkdtemp(prefix="restorezoo-demo-")
    atexit.register(shutil.rmtree, workdir, True)
    demo = build_demo(sources, device=device, examples=examples, workdir=workdir)
    demo.queue(default_concurrency_limit=1)  # one restoration at a time: models share one device
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        show_error=True,
        allowed_paths=[workdir],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        theme=gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
    )
    return demo
