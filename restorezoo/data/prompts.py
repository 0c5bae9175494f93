"""Human-style restoration instructions, written for restorezoo, and task-name helpers.

InstructIR (Conde et al., 2024, Sec. 3.2) conditions one restorer on free-form user requests and
trains an intent classifier next to it. A model only generalises to real users if it sees both
precise requests ("remove the Gaussian noise") and vague lay ones ("it's too dark"), so every task
below mixes the two, with varied casing and punctuation. About a fifth of each task's sentences are
held out (the ``"test"`` split) to measure how well a model copes with wording it never saw.

Only torch is imported, so datasets and the CLI can use this module without heavy dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch

__all__ = [
    "INSTRUCTIR_TASKS",
    "SPLITS",
    "TASK_ALIASES",
    "canonical_task",
    "instructions",
    "sample_instruction",
]

INSTRUCTIR_TASKS: tuple[str, ...] = ("noise", "blur", "rain", "haze", "lowlight", "sr", "enhancement")
"""InstructIR's intent classes, in order: a task's index is its intent label."""

SPLITS = ("train", "test", "all")

_TEST_EVERY = 5
_TEST_OFFSET = 2
"""Sentence ``i`` of a task is held out when ``i % 5 == 2``: deterministic, spread over the list."""

_BANK: dict[str, tuple[str, ...]] = {
    "noise": (
        "Remove the Gaussian noise from this photo.",
        "Denoise this image",
        "my picture looks grainy, can you fix it?",
        "Please get rid of the noise.",
        "clean up the grain in this shot",
        "There is a lot of static-like speckle here; smooth it out without losing detail.",
        "Reduce the sensor noise, please",
        "This was taken at a high ISO and it shows. Can you help?",
        "why is my photo so speckled",
        "Suppress the random pixel noise while keeping edges sharp.",
        "Could you make this look less noisy?",
        "REMOVE NOISE",
        "The image is full of colored dots, please clean it.",
        "I'd like a noise-free version of this picture.",
        "it looks sandy and fuzzy, fix it",
        "Apply denoising to the input.",
        "Get rid of the speckles all over my photo!",
        "Can you filter out the additive white noise?",
        "too much grain",
        "This photo has noise in the dark areas and the sky; make it clean.",
        "please de-noise",
        "Make the textures smooth again, the noise ruins them.",
        "Restore this noisy image to a clean one.",
        "my camera made this picture really grainy...",
        "Eliminate the noise artifacts.",
        "Could you take out the graininess but keep it natural?",
        "Clean this noisy photograph, please.",
        "the pic is all dotty and rough",
        "Noise reduction needed here.",
        "I want the grain gone.",
        "Please remove the fine random noise covering everything",
        "Lots of noise in this one, can you tidy it up?",
    ),
    "blur": (
        "Deblur this image.",
        "My photo is blurry, can you sharpen it?",
        "Remove the motion blur caused by camera shake.",
        "the picture is out of focus",
        "Please make this image sharp.",
        "Fix the blur, I moved while taking it",
        "Can you bring the details back into focus?",
        "It looks smeared, please fix it.",
        "Remove the Gaussian blur from the photo",
        "everything is fuzzy and soft",
        "Undo the shake in this photo.",
        "Make the edges crisp again.",
        "Could you deblur this shot? The subject moved.",
        "Sharpen this blurry picture, please!",
        "my hands were shaking when I took this",
        "Recover a sharp image from this blurred one.",
        "Focus is off. Fix it?",
        "The text in this photo is unreadable because of the blur.",
        "please unblur",
        "Reduce the blurriness.",
        "I need this picture to be clearer and less soft.",
        "It's a bit blurred; can you clean it up",
        "Remove the defocus blur.",
        "the whole thing looks like it's moving, make it still and sharp",
        "DEBLUR PLEASE",
        "Correct the motion smear in this image.",
        "Make this photo look in focus.",
        "Can you restore the sharpness that got lost?",
        "there's a double-image ghosting from motion, remove it",
        "Turn this soft, blurry shot into a sharp one.",
        "why does my photo look so smudgy?",
        "Please remove the blur and restore fine details.",
    ),
    "rain": (
        "Remove the rain from this image.",
        "Derain this photo",
        "there are rain streaks all over my picture",
        "Please get rid of the raindrops and streaks.",
        "Can you clean up the rain in this shot?",
        "It was pouring when I took this; remove the rain.",
        "Erase the white lines from the rain.",
        "rain is ruining the view, fix it",
        "Make it look like it wasn't raining.",
        "Delete the rainy streaks, please!",
        "I want a rain-free version of this photo.",
        "Remove the diagonal streaks caused by rainfall.",
        "can u remove the rain",
        "The rain makes everything look scratched. Clean it.",
        "Take the rain out of the image.",
        "There's rain in front of the camera, please remove it.",
        "DERAIN",
        "Could you wipe away the rain marks?",
        "Get rid of the downpour in this picture.",
        "Please remove the falling rain while keeping the scene intact",
        "The photo has thin bright lines from rain everywhere.",
        "Clear the rain streaks from this scene.",
        "it's raining in my photo and I don't want it to be",
        "Remove the precipitation from the image.",
        "Rain removal, please.",
        "Can you make this rainy photo look dry and clear?",
        "those vertical white streaks are rain, remove them",
        "Filter out the rain layer.",
        "Restore the scene behind the rain.",
        "my street photo is full of rain lines; fix?",
        "Please clean the rain off this picture.",
        "Remove every raindrop streak you can find.",
    ),
    "haze": (
        "Remove the haze from this image.",
        "Dehaze this photo",
        "everything looks foggy, can you clear it up?",
        "Please get rid of the fog.",
        "The picture is washed out by smog; fix it.",
        "Make the distant buildings visible through the haze.",
        "it's so misty I can barely see anything",
        "Clear the atmosphere in this shot.",
        "Can you remove the fog and restore the colors?",
        "Improve visibility in this hazy scene.",
        "DEHAZE",
        "The landscape is hidden behind a grey veil, please remove it.",
        "Reduce the haze and boost the contrast of far objects.",
        "my photo looks milky and faded because of the fog",
        "Cut through the mist.",
        "Please make this smoggy city photo clear.",
        "Get rid of the whitish haze over the whole image.",
        "fog removal please",
        "Could you make it look like a clear day?",
        "The air was polluted when I took this; clean up the haze.",
        "Remove the atmospheric scattering.",
        "Make the mountains in the background pop out of the haze.",
        "It looks like there's a layer of dust in the air. Fix it?",
        "Defog this picture.",
        "Restore the colors hidden by the mist.",
        "this pic is super hazy",
        "Please clear up the foggy look.",
        "Remove the grey fog covering the scene",
        "Why is my landscape shot so pale and foggy?",
        "Make the view crisp and haze-free.",
        "Get the haze out, please!",
        "Dehaze the image and bring back the contrast.",
    ),
    "lowlight": (
        "it's too dark",
        "Brighten this low-light photo.",
        "My picture is underexposed, can you fix it?",
        "Please make this image brighter.",
        "I can't see anything, it's so dark!",
        "Enhance this night shot.",
        "Increase the exposure.",
        "The photo was taken in a dark room; light it up.",
        "Can you recover the details hidden in the shadows?",
        "LIGHTEN IT UP",
        "Correct the low-light conditions in this image.",
        "too dim, make it brighter",
        "Make this look like it was taken in daylight.",
        "Raise the brightness but keep it natural.",
        "The scene is barely visible; please illuminate it.",
        "Fix the underexposure.",
        "can you turn the lights on in this pic",
        "Boost the brightness of this dark photo, please.",
        "This image is nearly black. Help!",
        "Please enhance the low-light image.",
        "my night photo came out way too dark",
        "Brighten the dark regions without blowing out the highlights.",
        "Give this gloomy picture more light.",
        "Improve the visibility of this dark image.",
        "It was taken at dusk and looks murky. Brighten it.",
        "more light please",
        "Restore a well-exposed version of this photo.",
        "Could you make the dark parts visible?",
        "Lift the shadows, everything is too dark.",
        "This indoor shot is so dim that faces are hard to see.",
        "Please brighten up the image.",
        "Fix the lighting, it's way too dark.",
    ),
    "sr": (
        "Increase the resolution of this image.",
        "Upscale this photo.",
        "the picture is low-res and pixelated, can you improve it?",
        "Please make this image high resolution.",
        "Super-resolve this image.",
        "Add fine detail to this low-resolution picture.",
        "It looks pixelated when I zoom in; fix it.",
        "Make this small photo look high-definition.",
        "can you enhance the resolution",
        "Recover the details lost by downsampling.",
        "This image was resized down and looks soft. Restore the details.",
        "UPSCALE",
        "Please improve the resolution and sharpness.",
        "Turn this low-quality thumbnail into a crisp image.",
        "my photo is too low-res to print",
        "Increase the level of detail in this picture.",
        "Could you make it look like it was shot with a better camera?",
        "The image lacks detail, please super-resolve it.",
        "enhance! zoom in and make it clear",
        "Restore the high-frequency details.",
        "Reconstruct a high-resolution version of this image.",
        "Make this blocky, low-res picture smooth and detailed.",
        "It's a tiny image that was blown up; please fix the softness.",
        "Give me a higher resolution version.",
        "Please upsample this and recover the textures.",
        "The details are all washed out from resizing.",
        "Make the picture HD.",
        "this looks like a low quality thumbnail",
        "Bring out the fine details in this downscaled image.",
        "Improve the resolution of my old photo.",
        "Please sharpen up the resolution.",
        "Can you make this image less pixelated?",
    ),
    "enhancement": (
        "Enhance this photo.",
        "Make my picture look better.",
        "can you improve the colors?",
        "Please retouch this image like a professional would.",
        "The colors are dull; make them vibrant.",
        "Improve the overall look of this photo.",
        "make it pop",
        "Give this image a nicer tone and contrast.",
        "Can you make this picture more aesthetically pleasing?",
        "The photo looks flat. Add some contrast.",
        "ENHANCE",
        "Correct the colors and exposure of this image.",
        "Make this photo look like it was edited by an expert.",
        "it looks kind of bland, spice it up",
        "Please adjust the white balance and saturation.",
        "Improve the image quality.",
        "Make the colors more natural and lively.",
        "Could you beautify this photo?",
        "The tones look off; please fix them.",
        "Give this picture a professional touch.",
        "I want this to look like a magazine photo.",
        "Please make the image more vivid.",
        "fix the colors, they look washed out",
        "Boost the contrast and the saturation a bit.",
        "Can you do a quick photo enhancement?",
        "My photo looks dull, can you liven it up?",
        "Apply a nice color grading to this image.",
        "Retouch this shot please",
        "Make it look more appealing",
        "Improve the contrast and color balance.",
        "Tone this image so that it looks more striking.",
        "Polish this photo a little.",
    ),
}

TASK_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        **{t: t for t in (*INSTRUCTIR_TASKS, "jpeg", "clean")},
        "denoise": "noise",
        "denoising": "noise",
        "gaussian_noise": "noise",
        "deblur": "blur",
        "deblurring": "blur",
        "motion_blur": "blur",
        "gaussian_blur": "blur",
        "low-light": "lowlight",
        "low_light": "lowlight",
        "low light": "lowlight",
        "lol": "lowlight",
        "super-resolution": "sr",
        "super_resolution": "sr",
        "superres": "sr",
        "superresolution": "sr",
        "derain": "rain",
        "deraining": "rain",
        "dehaze": "haze",
        "dehazing": "haze",
        "enhance": "enhancement",
        "enhancing": "enhancement",
        "retouch": "enhancement",
        "dejpeg": "jpeg",
        "deblocking": "jpeg",
        "identity": "clean",
    }
)
"""Lower-case synonyms → canonical task names (each canonical name maps to itself)."""


def canonical_task(name: str) -> str:
    """Map a task name or synonym ("denoise", "Low-Light", "superres") to its canonical name."""
    key = name.strip().lower()
    if key not in TASK_ALIASES:
        raise ValueError(
            f"unknown task {name!r}; known tasks: {', '.join(sorted(set(TASK_ALIASES.values())))}"
        )
    return TASK_ALIASES[key]


def instructions(task: str, split: str = "train") -> tuple[str, ...]:
    """The instructions of one task (aliases allowed) for ``split`` in {"train", "test", "all"}."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    canonical = TASK_ALIASES.get(task.strip().lower())
    if canonical not in _BANK:
        raise ValueError(f"no instructions for task {task!r}; tasks with instructions: {', '.join(_BANK)}")
    bank = _BANK[canonical]
    if split == "all":
        return bank
    held_out = split == "test"
    return tuple(s for i, s in enumerate(bank) if (i % _TEST_EVERY == _TEST_OFFSET) == held_out)


def sample_instruction(task: str, generator: torch.Generator | None = None, split: str = "train") -> str:
    """Draw one instruction uniformly, reproducibly when a seeded CPU ``generator`` is given."""
    bank = instructions(task, split)
    device = generator.device if generator is not None else torch.device("cpu")
    return bank[int(torch.randint(len(bank), (1,), generator=generator, device=device))]
