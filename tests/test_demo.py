"""`restorezoo demo` in a real headless browser: Debian's chromium driven by Playwright.

The demo serves a tiny random InstructIR on 127.0.0.1; the browser uploads an odd photo (RGBA, odd
size), types an instruction, restores, and downloads the result, which must have the input's size.
A screenshot of the page goes to benchmarks/results/demo.png.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOT = REPO / "benchmarks" / "results" / "demo.png"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_family_decides_which_inputs_the_page_shows(tiny_ckpt):
    import restorezoo
    from restorezoo.demo import controls_for, degradation_predictor
    from restorezoo.models import IRSDE

    instructir = controls_for(restorezoo.load_model(ckpt=tiny_ckpt))
    assert instructir.instruction
    assert not (instructir.sampler or instructir.degradation or instructir.prompt_and_caption)
    irsde = IRSDE(nf=8, ch_mult=(1, 2), T=12, steps=5, daclip="tiny", use_image_context=False)
    controls = controls_for(irsde)
    assert controls.sampler and controls.degradation and not controls.instruction
    assert (controls.max_steps, controls.default_steps) == (12, 5), "the step slider stops at the SDE's T"
    words = degradation_predictor(irsde)(torch.rand(2, 3, 32, 32))
    assert len(words) == 2 and all(w in irsde.daclip.degradation_words for w in words)
    assert degradation_predictor(IRSDE(nf=8, ch_mult=(1, 2), T=12, daclip=None)) is None


def test_diff_restorer_takes_no_text_and_shows_the_class_its_prompt_processor_predicts(tmp_path):
    from restorezoo.data.io import save_image
    from restorezoo.demo import controls_for, restore_file
    from restorezoo.models import DiffRestorer

    classes = ["noise", "lowlight", "blur"]
    model = DiffRestorer(
        pretrained="tiny", clip_model="tiny", degradation_classes=classes, degradation_dim=16, hidden_dim=32,
        control_channels=(16, 16, 32, 32), progress=False, steps=2,
    ).eval()  # fmt: skip
    controls = controls_for(model)
    assert controls.degradation and controls.sampler and not (controls.instruction or controls.prompt_and_caption)
    photo = save_image(torch.rand(3, 19, 27), tmp_path / "photo.png")
    image, restored, degradation = restore_file(model, photo, sampling={"steps": 1, "seed": 0})
    assert degradation in classes and restored.shape == image.shape == (3, 19, 27)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")
def test_upload_prompt_restore_and_download_in_a_headless_browser(tiny_ckpt, tmp_path):
    pytest.importorskip("gradio", reason="needs gradio: pip install 'restorezoo[demo]'")
    playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
    from restorezoo.data import Sample
    from restorezoo.data.io import tensor_to_uint8
    from restorezoo.demo import launch

    noisy = Sample("test", tasks=["noise"]).configure(training=False)[0]["lq"]  # an embedded photo, noised
    photo = tmp_path / "odd photo.png"  # RGBA and odd-sized: converted on load, restored at its own size
    rgb = tensor_to_uint8(noisy[:, 40:161, 50:207])
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(photo)

    port = _free_port()
    demo = launch([tiny_ckpt], port=port, device="cpu", examples=True, block=False)
    try:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                page.wait_for_selector("#run", timeout=30_000)

                page.locator("#input-image input[type=file]").set_input_files(str(photo))
                page.locator("#instruction textarea, #instruction input").first.fill("remove the noise, please")
                page.click("#run")
                page.locator("#download").wait_for(state="visible", timeout=30_000)
                page.get_by_text("restored in").first.wait_for(timeout=10_000)
                assert page.locator("#result img").count() == 2, "before and after images in the slider"
                with page.expect_download(timeout=15_000) as download_info:
                    page.click("#download")
                saved = tmp_path / "downloaded.png"
                download_info.value.save_as(saved)
                page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

                page.locator("#input-image button[aria-label='Remove Image']").first.click()
                page.click("#run")  # nothing to restore: one message on the page, and the app keeps serving
                page.get_by_text("upload a photo or pick a sample photo first").first.wait_for(timeout=15_000)
            finally:
                browser.close()
    finally:
        demo.close()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "demo.png", SCREENSHOT)
    with Image.open(saved) as result:
        assert result.format == "PNG" and result.mode == "RGB"
        assert result.size == (157, 121), "the restored image has the input's size"
        assert np.asarray(result).std() > 0


def test_demo_without_checkpoints_says_how_to_give_one_in_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("gradio", reason="needs gradio: pip install 'restorezoo[demo]'")
    from restorezoo.cli import main

    monkeypatch.chdir(tmp_path)  # no runs/*/checkpoints/last.ckpt here
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--port", str(_free_port())])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1 and stderr.count("\n") == 1 and "--ckpt" in stderr
