"""Human-style restoration instructions, written for restorezoo, and task-name helpers.

InstructIR (Conde et al., 2024, Sec. 3.2) conditions one restorer on free-form user requests and
trains an intent classifier next to it. A model only generalises to real users if it sees both
precise requests ("remove the Gaussian noise") and vague lay ones ("it's too dark"), so every task
below mixes the two, with varied casing and punctuation. ``instructions()`` adds restorezoo's
generated set (``restorezoo.data.instructions``) and holds sentences out by template and vocabulary
(the ``"test"`` split), to measure how well a model copes with wording it never saw.

Nothing heavy is imported (torch only inside ``sample_instruction``), so ``restorezoo list`` and
``restorezoo data check`` read the vocabularies without paying for torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

__all__ = [
    "INSTRUCTIR_TASKS",
    "SPLITS",
    "TASK_ALIASES",
    "canonical_task",
    "hand_written",
    "instructions",
    "sample_instruction",
    "DACLIP_DEGRADATIONS",
    "DIFFRESTORER_CLASSES",
    "SPIRE_BLIND_PROMPT",
    "TASK_VOCABULARY",
    "TaskNames",
    "daclip_caption",
    "from_daclip_word",
    "from_diffrestorer_class",
    "to_daclip_word",
    "to_diffrestorer_class",
    "to_instructir_intent",
]

INSTRUCTIR_TASKS: tuple[str, ...] = ("noise", "blur", "rain", "haze", "lowlight", "sr", "enhancement")
"""InstructIR's intent classes, in order: a task's index is its intent label."""

SPLITS = ("train", "test", "all")

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
        "The shadows are full of speckles from the high ISO setting.",
        "Smooth out the dotty texture, it's sensor noise.",
        "Too much static in this night shot; denoise it.",
        "Clean the salt-and-pepper looking specks.",
        "The grainy film look is not wanted, remove it",
        "Can the noise in the sky be cleaned up?",
        "get rid of the colour speckle",
        "This is noisy. Make it clean but keep it sharp.",
        "Shot at ISO 6400 and now it's full of grain; clean it.",
        "the dots all over the photo are noise, remove them",
        "Rough, speckled texture everywhere: please denoise.",
        "Can you clean up the high-ISO noise?",
        "It looks gritty and speckled, make it clean",
        "High ISO left this picture grainy; please fix it.",
        "The dark areas are speckled with noise, clean them but keep the brightness.",
        "It's covered in tiny dots, remove them",
        "The photo feels rough and sandy, smooth the noise away.",
        "Speckles everywhere in the shadows, denoise please",
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
        "The picture is smudged; make it crisp.",
        "Everything is smeared sideways, please fix.",
        "The camera was not steady, undo the streaking.",
        "Bring the blurry edges back to sharp lines.",
        "It's soft and out of focus, I can't read anything",
        "Undo the lens defocus",
        "make this less blurry please",
        "The subject is a smear, sharpen it back.",
        "Everything looks smeared and soft, make it sharp.",
        "The image is smudged like it moved, please sharpen.",
        "Fix the smearing, the edges are not crisp",
        "It's smeared; restore the detail.",
        "Smudgy, soft photo: please deblur it",
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
        "Take away the streaks of rain falling across the picture.",
        "There are white rain lines everywhere",
        "Clean the drizzle out of the photo.",
        "Remove the storm streaks from this scene",
        "make it look like a dry day",
        "The rain lines hide the background; remove them.",
        "wipe the rain away",
        "Erase the rainfall from my photo please.",
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
        "The scene is foggy, make it clear.",
        "Remove the haze that washes everything out.",
        "Dehaze this landscape, please",
        "It looks milky and low-contrast because of smog.",
        "Clear the mist from the distance",
        "Give the far buildings back their contrast, the air is hazy.",
        "too much fog here",
        "The view is washed out by haze; clean it.",
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
        "Brighten this photo, it's almost black.",
        "The exposure is too low; fix it.",
        "I can't see anything, it's so dim",
        "Lighten the shadows and raise the exposure.",
        "It was shot at night without a flash; make it brighter.",
        "make it less dark",
        "Turn up the light in this underexposed image.",
        "Increase the brightness, please.",
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
        "The image is pixelated; add fine detail.",
        "Increase the resolution of this low-res picture.",
        "Upscale quality: it looks blocky and soft.",
        "make this small blurry image high resolution",
        "It was enlarged from a thumbnail; restore the details.",
        "Super-resolve this picture please",
        "Add back the detail lost by downscaling.",
        "This looks like a low-quality zoom, fix it.",
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
        "Make the colours pop a bit more.",
        "Retouch this photo like a professional would.",
        "The tones are flat; enhance it.",
        "Improve the overall look of this picture",
        "Give it a nicer, more vivid grade.",
        "Can this look a little more polished?",
        "Adjust the contrast and colours to look better.",
        "Enhance the photo's aesthetics, please.",
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
        **{t: t for t in ("snow", "raindrop", "shadow", "inpainting", "realesrgan", "parameterized")},
        "desnow": "snow",
        "desnowing": "snow",
        "snowy": "snow",
        "raindrops": "raindrop",
        "rain_drop": "raindrop",
        "deraindrop": "raindrop",
        "shadowed": "shadow",
        "deshadow": "shadow",
        "shadow_removal": "shadow",
        "inpaint": "inpainting",
        "uncompleted": "inpainting",
        "real-esrgan": "realesrgan",
        "real_esrgan": "realesrgan",
        "spire": "parameterized",
        "noisy": "noise",
        "motion-blurry": "blur",
        "blurry": "blur",
        "rainy": "rain",
        "hazy": "haze",
        "jpeg-compressed": "jpeg",
        "jpeg_compression": "jpeg",
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
    """The instructions of one task (aliases allowed) for ``split`` in {"train", "test", "all"}.

    The hand-written bank below plus restorezoo's generated set (``restorezoo.data.instructions``:
    over 10 000 sentences); "test" is held out by template and by vocabulary, not just by sentence.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    canonical = TASK_ALIASES.get(task.strip().lower())
    if canonical not in _BANK:
        raise ValueError(f"no instructions for task {task!r}; tasks with instructions: {', '.join(_BANK)}")
    from restorezoo.data.instructions import instruction_texts

    return instruction_texts(canonical, split)


def hand_written(task: str) -> tuple[str, ...]:
    """The hand-written bank of one task alone (``instructions`` adds the generated set)."""
    canonical = TASK_ALIASES.get(task.strip().lower())
    if canonical not in _BANK:
        raise ValueError(f"no instructions for task {task!r}; tasks with instructions: {', '.join(_BANK)}")
    return _BANK[canonical]


def sample_instruction(task: str, generator: torch.Generator | None = None, split: str = "train") -> str:
    """Draw one instruction uniformly, reproducibly when a seeded CPU ``generator`` is given."""
    bank = instructions(task, split)
    import torch

    device = generator.device if generator is not None else torch.device("cpu")
    return bank[int(torch.randint(len(bank), (1,), generator=generator, device=device))]


# --------------------------------------------------------------------------------------------------
# the other papers' degradation vocabularies

DACLIP_DEGRADATIONS: tuple[str, ...] = (
    "motion-blurry",
    "hazy",
    "jpeg-compressed",
    "low-light",
    "noisy",
    "raindrop",
    "rainy",
    "shadowed",
    "snowy",
    "uncompleted",
)
"""DA-CLIP's ten degradation words (Luo et al., ICLR 2024), in the paper's order: a word's index is its class."""

DIFFRESTORER_CLASSES: tuple[str, ...] = (
    "noise",
    "lowlight",
    "haze",
    "rain",
    "raindrop",
    "snow",
    "blur",
    "jpeg",
)
"""Diff-Restorer's eight degradation types as canonical task names; a task's index is its L_deg class."""

SPIRE_BLIND_PROMPT = "Remove all degradation"
"""SPIRE's restoration prompt for Real-ESRGAN-degraded training images and for blind inference."""


class TaskNames(NamedTuple):
    """What one canonical task is called in each paper's vocabulary (None where it has no name)."""

    instructir: int | None
    daclip: str | None
    diffrestorer: int | None


def _names(task: str, daclip: str | None) -> TaskNames:
    return TaskNames(
        INSTRUCTIR_TASKS.index(task) if task in INSTRUCTIR_TASKS else None,
        daclip,
        DIFFRESTORER_CLASSES.index(task) if task in DIFFRESTORER_CLASSES else None,
    )


TASK_VOCABULARY: Mapping[str, TaskNames] = MappingProxyType(
    {
        "noise": _names("noise", "noisy"),
        "blur": _names("blur", "motion-blurry"),
        "rain": _names("rain", "rainy"),
        "haze": _names("haze", "hazy"),
        "lowlight": _names("lowlight", "low-light"),
        "sr": _names("sr", None),
        "enhancement": _names("enhancement", None),
        "jpeg": _names("jpeg", "jpeg-compressed"),
        "snow": _names("snow", "snowy"),
        "raindrop": _names("raindrop", "raindrop"),
        "shadow": _names("shadow", "shadowed"),
        "inpainting": _names("inpainting", "uncompleted"),
        "realesrgan": _names("realesrgan", None),
        "parameterized": _names("parameterized", None),
    }
)
"""Canonical task → its InstructIR intent index, DA-CLIP word and Diff-Restorer class index.

The one table that translates between the models' label spaces, so a dataset labelled once with
restorezoo's task names can train any of them. Indices are derived from ``INSTRUCTIR_TASKS`` and
``DIFFRESTORER_CLASSES`` so the orders cannot drift apart.
"""


def _lookup_names(task: str, field: str) -> object:
    """One vocabulary's name for ``task``; a "+"-joined mixture gives the list of its parts' names."""
    if "+" in task:
        return [_lookup_names(part, field) for part in task.split("+")]
    canonical = canonical_task(task)
    if canonical not in TASK_VOCABULARY:
        raise ValueError(f"task {task!r} has no vocabulary entry; mapped tasks: {', '.join(TASK_VOCABULARY)}")
    return getattr(TASK_VOCABULARY[canonical], field)


def to_instructir_intent(task: str) -> int | None | list[int | None]:
    """InstructIR intent index of ``task`` (None if InstructIR has no such intent; a list for "a+b").

    Unknown task names raise ``ValueError``; known tasks outside the vocabulary return None.
    """
    return _lookup_names(task, "instructir")  # type: ignore[return-value]


def to_daclip_word(task: str) -> str | None | list[str | None]:
    """DA-CLIP degradation word of ``task`` (None if DA-CLIP has no such word; a list for "a+b")."""
    return _lookup_names(task, "daclip")  # type: ignore[return-value]


def to_diffrestorer_class(task: str) -> int | None | list[int | None]:
    """Diff-Restorer class index of ``task`` (None if it has no such class; a list for "a+b")."""
    return _lookup_names(task, "diffrestorer")  # type: ignore[return-value]


def from_daclip_word(word: str) -> str:
    """Canonical task of a DA-CLIP degradation word ("snowy" → "snow")."""
    for task, names in TASK_VOCABULARY.items():
        if names.daclip == word.strip().lower():
            return task
    raise ValueError(f"unknown DA-CLIP degradation word {word!r}; words: {', '.join(DACLIP_DEGRADATIONS)}")


def from_diffrestorer_class(index: int) -> str:
    """Canonical task of a Diff-Restorer class index (0 → "noise")."""
    if not 0 <= int(index) < len(DIFFRESTORER_CLASSES):
        raise ValueError(
            f"Diff-Restorer class index must be in [0, {len(DIFFRESTORER_CLASSES)}), got {index}"
        )
    return DIFFRESTORER_CLASSES[int(index)]


def daclip_caption(caption: str, degradation_word: str) -> str:
    """DA-CLIP's training text, ``"{caption}: {degradation word}"``.

    An empty caption gives the bare word, so images without alt-text still train the degradation
    branch without a dangling ": " prefix. The word must be one of :data:`DACLIP_DEGRADATIONS`.
    """
    word = degradation_word.strip().lower()
    if word not in DACLIP_DEGRADATIONS:
        raise ValueError(
            f"unknown DA-CLIP degradation word {degradation_word!r}; words: {', '.join(DACLIP_DEGRADATIONS)}"
        )
    caption = caption.strip()
    return f"{caption}: {word}" if caption else word
