"""restorezoo's instruction generator: templates x vocabularies x registers, with a held-out split
disjoint by template *and* by vocabulary.

InstructIR (Conde et al., ECCV 2024, Sec. 3.1) trains on over 10 000 GPT-4-written instructions for its
7 tasks, from technical to lay and ambiguous wording, and tests on unseen human-written ones. That set
is not distributed, so restorezoo builds its own the same way a prompt engineer would: every task has a
vocabulary of what users call the degradation (``obj``: "grain", "motion blur"), what they want
(``goal``: "sharp", "brighter"), how the photo looks (``adj``: "foggy") and vague task-flavoured
phrases (``vague``: "the tiny dots", the paper's "Basic & Ambiguous" level); task-independent
templates in seven registers (technical, casual, terse, misspelt, question, long, ambiguous) put one
vocabulary item into a sentence, and a general register ("Fix my image please", the paper's Table 1
"General" row) has no task word at all.

Held-out split: a sentence is held out when its template *and* its vocabulary item are both held out
(every 4th of each list); it is for training when both are training ones; the mixed rest is dropped.
So held-out accuracy measures a model on wording it never saw, neither the phrasing nor the words
(the hand-written bank of ``prompts.py`` trains, except its sentences that use a held-out word). The
held-out words are everyday synonyms of training concepts: expert phrasings with no training relative
("look like a low-ISO shot", "aliasing") and words that also name another restorezoo task ("shadowy":
shadow removal) or two of these ("smooth and clean": denoise or deblur) sit in training positions.

Ambiguous prompts: the paper's task-flavoured vague prompts ("Remove the tiny dots in this image",
"Can you make this picture clearer?") belong to their task, as in its Tables 1 and 4. General prompts
have no task; the paper lists them apart ("General") and its release has no general class, so
restorezoo maps them to ``"enhancement"`` (the release's catch-all of "improve the colors of my image"
prompts): ``general_task`` switches this (None leaves them out). Only the standard library is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "GENERAL_TASK",
    "REGISTERS",
    "Instruction",
    "generate_instructions",
    "instruction_texts",
    "held_out_vocabulary",
]

TASKS: tuple[str, ...] = ("noise", "blur", "rain", "haze", "lowlight", "sr", "enhancement")
REGISTERS: tuple[str, ...] = ("technical", "casual", "terse", "misspelt", "question", "long", "ambiguous", "general")
GENERAL_TASK = "enhancement"
"""restorezoo's choice for general prompts ("make the image look better"): the paper is silent."""
HANDWRITTEN = "handwritten"
"""Register name of the hand-written bank's sentences (``prompts.py``)."""

_HOLD_OUT_EVERY = 4
_TEMPLATE_OFFSET = 1
_VOCAB_OFFSET = 2
"""Item ``i`` of a template list (per register and slot) or a vocabulary list (per task and kind) is held
out when ``i % 4`` equals its offset: deterministic and spread over each list."""


@dataclass(frozen=True)
class Instruction:
    """One generated instruction and where it came from (ids are stable across runs)."""

    text: str
    task: str
    register: str
    template: str
    vocabulary: str | None
    split: str


# ------------------------------------------------------------------------------------------ vocabulary
# Per task and kind; order matters (it fixes the ids and the held-out items).
_VOCABULARY: dict[str, dict[str, tuple[str, ...]]] = {
    "noise": {
        "obj": ("noise", "Gaussian noise", "sensor noise", "high-ISO noise", "grain", "graininess",
                "speckles", "colour speckle", "static", "luminance noise", "chroma noise", "random pixel noise"),
        "goal": ("clean", "noise-free", "less grainy", "smooth and clean", "free of grain", "speckle-free",
                 "less noisy", "look like a low-ISO shot", "grain-free", "free of speckle", "denoised",
                 "quiet in the shadows"),
        "adj": ("noisy", "grainy", "speckled", "full of noise", "sandy-looking", "gritty", "covered in grain",
                "full of static", "peppered with noise", "fuzzy with grain", "dotty", "staticky"),
        "vague": ("the tiny dots", "the little specks", "the rough texture", "the fuzz all over it",
                  "the sparkly bits", "the sandpaper look"),
    },
    "blur": {
        "obj": ("blur", "motion blur", "camera shake", "defocus blur", "Gaussian blur", "smearing", "fuzziness",
                "shake", "softness", "focus problem", "ghosting from movement", "streaky motion"),
        "goal": ("sharp", "sharper", "crisp", "in focus", "tack sharp", "clear and sharp", "look steady",
                 "less blurry", "focused", "deblurred", "sharp again", "free of shake"),
        "adj": ("blurry", "out of focus", "shaky", "smeared", "fuzzy", "soft", "motion-blurred", "unsharp", "shaken", "smudged", "not sharp",
                "defocused"),
        "vague": ("the movement", "the wobble", "the doubled edges", "the smudgy look", "the wiggly outlines",
                  "the mushy details"),
    },
    "rain": {
        "obj": ("rain", "rain streaks", "raindrops", "rainfall", "drizzle", "downpour", "rain lines",
                "falling rain", "rain streak artefacts", "shower of rain", "wet streaks", "storm rain"),
        "goal": ("rain-free", "look dry", "free of rain", "clear of rain streaks", "look like it was not raining",
                 "rainless", "streak-free", "without rain", "derained", "dry", "clean of raindrops",
                 "rain-less and clear"),
        "adj": ("rainy", "full of rain", "streaked with rain", "covered in rain streaks", "drizzly",
                "wet and streaky", "rain-soaked", "stormy", "streaky from the rain", "dripping with rain", "spoiled by rain",
                "rain-streaked"),
        "vague": ("the streaks", "the white lines", "the falling lines", "the diagonal stripes", "the wet mess",
                  "the drops coming down"),
    },
    "haze": {
        "obj": ("haze", "fog", "mist", "smog", "atmospheric haze", "haziness", "murk", "foggy veil",
                "airlight", "pollution haze", "milky haze", "scattering haze"),
        "goal": ("clear", "haze-free", "fog-free", "crisp and clear", "look like a clear day", "free of mist",
                 "less foggy", "see-through", "dehazed", "free of haze", "clear of fog", "smog-free"),
        "adj": ("hazy", "foggy", "misty", "smoggy", "murky", "washed out by fog", "cloudy", "milky", "foggy and grey", "veiled in haze", "smoky",
                "hazed over"),
        "vague": ("the cloudiness", "the greyness", "the whitish veil", "the dull grey layer",
                  "the soup in the air", "the faded look far away"),
    },
    "lowlight": {
        "obj": ("darkness", "underexposure", "poor lighting", "low light", "dim lighting", "lack of light",
                "poor illumination", "low exposure", "night darkness", "gloomy lighting", "dark shadows",
                "insufficient light"),
        "goal": ("brighter", "well lit", "properly exposed", "lighter", "bright like daytime", "better exposed",
                 "more visible", "illuminated", "lit up", "brighter and clearer", "exposed correctly",
                 "less dark"),
        "adj": ("dark", "underexposed", "dim", "poorly lit", "gloomy", "shadowy", "pitch black",
                "too dark to see", "badly exposed", "almost black", "murky and dark", "night-dark"),
        "vague": ("the gloom", "the blackness", "the heavy shadows", "the night look", "the lack of visibility",
                  "the dark corners"),
    },
    "sr": {
        "obj": ("low resolution", "pixelation", "lack of detail", "blockiness", "jagged pixels", "small size",
                "coarse pixels", "aliasing", "missing fine detail", "low pixel count", "upscaling need",
                "staircase edges"),
        "goal": ("bigger", "higher resolution", "larger", "high-res", "4x larger", "more detailed", "upscaled",
                 "larger with fine detail", "super-resolved", "enlarged", "twice the size", "higher in resolution"),
        "adj": ("small", "low-res", "pixelated", "tiny", "blocky", "low resolution", "thumbnail-sized",
                "lacking pixels", "too low in resolution", "low in detail", "pixely", "too little"),
        "vague": ("the chunky squares", "the tiny size", "the missing details", "the jaggies", "the lego look",
                  "the little squares"),
    },
    "enhancement": {
        "obj": ("dull colours", "flat contrast", "colour cast", "washed-out tones", "poor colour balance",
                "bland look", "weak contrast", "muted colours", "boring tones", "bad white balance",
                "lifeless colours", "flat look"),
        "goal": ("pop", "more vibrant", "more colourful", "look professionally edited", "look like a DSLR shot",
                 "punchier", "look cinematic", "richer in colour", "more vivid", "look retouched", "more striking", "better toned"),
        "adj": ("dull", "flat", "washed out", "bland", "lifeless", "colourless", "muted", "drab", "boring", "faded", "unexciting",
                "grey and dull"),
        "vague": ("the boring vibe", "the so-so colours", "the meh look", "the amateur feel", "the tired tones",
                  "the lack of punch"),
    },
}

_MEDIA = ("photo", "picture", "image", "shot", "pic")
_WHEN = ("on my phone last weekend", "during a family trip", "at my friend's wedding", "with an old camera")
_TAILS = ("", " please", ", thanks!")

# ------------------------------------------------------------------------------------------ templates
# register -> slot kind -> templates. {m}: medium, {w}: when, {t}: tail; {x}: the vocabulary item.
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "technical": {
        "obj": ("Remove the {x} from the {m}.", "Apply {x} reduction to this {m}.",
                "Suppress the {x} while preserving edges and texture.", "Correct the {x} in the input {m}.",
                "Perform a restoration that eliminates the {x}.", "Compensate for the {x} in this {m}.",
                "Reduce the {x}, keeping fine structures intact.", "Eliminate the {x} artefacts from the {m}."),
        "adj": ("The input {m} is {x}; restore it to a clean reference.", "Restore this {m}, it is {x}."),
        "goal": ("Make the {m} {x} without introducing artefacts.", "Process the {m} so that it is {x}."),
    },
    "casual": {
        "obj": ("get rid of the {x}{t}", "can u remove the {x} from my {m}", "ugh, so much {x}, fix it{t}",
                "the {x} is ruining this {m}, help", "take the {x} out of my {m}{t}", "lose the {x}{t}"),
        "adj": ("my {m} came out {x} lol, fix it", "it looks {x}, help me out{t}", "omg this {m} is so {x}"),
        "goal": ("make it {x}{t}", "wanna make my {m} {x}"),
    },
    "terse": {
        "obj": ("{x} removal", "no {x}", "remove {x}", "less {x}", "fix {x}"),
        "adj": ("{x} {m}. fix.",),
        "goal": ("make {x}", "{m} {x}, now"),
    },
    "misspelt": {
        "obj": ("pls remvoe the {x} frm my {m}", "can yu fix teh {x}", "get rid off the {x}{t}",
                "remoev {x} plz", "cn you tak the {x} out"),
        "adj": ("my {m} is realy {x}", "its so {x}, fix it plz", "teh {m} is {x} :("),
        "goal": ("make it {x} plese", "mak my {m} {x}", "i wnat it {x}"),
    },
    "question": {
        "obj": ("Can you remove the {x} in this {m}?", "Could you get rid of the {x}?",
                "Is it possible to reduce the {x}?", "How do I fix the {x} here?"),
        "adj": ("Why is my {m} so {x}? Can you fix it?",),
        "goal": ("Could you make this {m} {x}?", "Would you mind making it {x}?"),
        "vague": ("Can you do something about {x}?",),
    },
    "long": {
        "obj": ("I took this {m} {w} and the {x} ruins it; could you remove it while keeping the colours and "
                "the details natural?",
                "This {m} means a lot to me, but the {x} makes it hard to look at. Please take care of it "
                "without changing anything else.",
                "I am preparing a print of this {m}, which I shot {w}, and I would like the {x} fixed before "
                "it goes to the lab."),
        "adj": ("I shot this {m} {w} and it came out {x}. Could you restore it so it looks like what I saw?",
                "My {m}, taken {w}, looks {x} and I would love to share it; can you repair it carefully?"),
        "goal": ("I would like this {m}, taken {w}, to be {x}, but please keep it looking natural.",),
    },
    "ambiguous": {
        "vague": ("Remove {x} in this {m}", "get rid of {x}{t}", "I don't like {x}, fix it",
                  "{x} bothers me", "make {x} go away{t}", "please take away {x} from my {m}",
                  "Could you clean {x} up a bit"),
    },
    "general": {
        "none": ("Fix my {m}{t}", "Make the {m} look better", "Improve the quality of this {m}",
                 "Enhance this {m}{t}", "Can you make this {m} nicer?", "Make it look good{t}",
                 "Restore this {m}", "help me improve this {m}", "make it better pls", "I want this {m} to look great",
                 "Touch up my {m}{t}", "Could you polish this {m}?", "Do your magic on this {m}",
                 "make this {m} look amazing", "Give my {m} a makeover", "Clean up this {m}{t}"),
    },
}


def _typo(term: str) -> str:
    """A deterministic misspelling: swap the middle letters of the term's longest word (noise -> niose)."""
    words = term.split(" ")
    i = max(range(len(words)), key=lambda k: len(words[k]))
    word = words[i]
    if len(word) >= 4:
        j = len(word) // 2 - 1
        words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def _held_out(index: int, offset: int) -> bool:
    return index % _HOLD_OUT_EVERY == offset


def _fill(template: str, item: str) -> list[str]:
    """Every filling of a template's medium/when/tail slots with one vocabulary item."""
    media = _MEDIA if "{m}" in template else ("",)
    whens = _WHEN if "{w}" in template else ("",)
    tails = _TAILS if "{t}" in template else ("",)
    return [
        re.sub(r"\s+", " ", template.format(x=item, m=m, w=w, t=t)).strip()
        for m in media
        for w in whens
        for t in tails
    ]


@lru_cache(maxsize=4)
def generate_instructions(general_task: str | None = GENERAL_TASK) -> tuple[Instruction, ...]:
    """Every generated instruction (train and held-out), each string once.

    A string that two tasks would both produce is dropped from both (no label noise).
    """
    rows: list[Instruction] = []
    for register, slots in _TEMPLATES.items():
        for kind, templates in slots.items():
            for t_index, template in enumerate(templates):
                t_id = f"{register}:{kind}:{t_index}"
                t_test = _held_out(t_index, _TEMPLATE_OFFSET)
                if kind == "none":
                    if general_task is None:
                        continue
                    split = "test" if t_test else "train"
                    rows += [Instruction(s, general_task, register, t_id, None, split) for s in _fill(template, "")]
                    continue
                for task in TASKS:
                    for v_index, item in enumerate(_VOCABULARY[task][kind]):
                        v_test = _held_out(v_index, _VOCAB_OFFSET)
                        if t_test != v_test:
                            continue  # mixed: neither a clean training nor a clean held-out sentence
                        word = _typo(item) if register == "misspelt" else item
                        v_id = f"{task}:{kind}:{v_index}"
                        split = "test" if t_test else "train"
                        rows += [Instruction(s, task, register, t_id, v_id, split) for s in _fill(template, word)]
    return _distinct(rows)


def _key(text: str) -> str:
    """Strings equal up to case and punctuation count as one instruction."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _distinct(rows: Iterable[Instruction]) -> tuple[Instruction, ...]:
    """First of each instruction (up to case and punctuation); one that two tasks share is dropped."""
    rows = list(rows)
    tasks_of: dict[str, set[str]] = {}
    for row in rows:
        tasks_of.setdefault(_key(row.text), set()).add(row.task)
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = _key(row.text)
        if len(tasks_of[key]) == 1 and key not in seen:
            seen.add(key)
            unique.append(row)
    return tuple(unique)


def held_out_vocabulary() -> tuple[str, ...]:
    """The held-out vocabulary items of every task and kind (never in a training sentence)."""
    return tuple(
        item
        for kinds in _VOCABULARY.values()
        for items in kinds.values()
        for i, item in enumerate(items)
        if _held_out(i, _VOCAB_OFFSET)
    )


def _uses(sentence: str, terms: Iterable[str]) -> bool:
    low = sentence.lower()
    return any(re.search(rf"(?<![\w-]){re.escape(term.lower())}(?![\w-])", low) for term in terms)


@lru_cache(maxsize=4)
def instruction_table(general_task: str | None = GENERAL_TASK) -> tuple[Instruction, ...]:
    """Generated instructions plus the hand-written bank (register ``"handwritten"``).

    A bank sentence trains unless it uses a held-out vocabulary item; then it is held out (it is
    human-written and its wording unseen, like the paper's test instructions).
    """
    from restorezoo.data.prompts import hand_written

    held = held_out_vocabulary()
    bank = []
    for task in TASKS:
        for i, sentence in enumerate(hand_written(task)):
            split = "test" if _uses(sentence, held) else "train"
            bank.append(Instruction(sentence, task, HANDWRITTEN, f"bank:{task}:{i}", None, split))
    # The bank comes first, so a sentence the generator also writes keeps the bank's task and split.
    return _distinct((*bank, *generate_instructions(general_task)))


def instruction_texts(task: str, split: str = "train") -> tuple[str, ...]:
    """The instruction strings of one canonical task for ``split`` in {"train", "test", "all"}."""
    rows = instruction_table()
    if split == "all":
        return tuple(r.text for r in rows if r.task == task)
    return tuple(r.text for r in rows if r.task == task and r.split == split)


# ------------------------------------------------------------------------------------------ release prompts
RELEASE_SEED = 42
"""The release's evaluation seed (``seed_everything(42)`` before the test loop)."""
RELEASE_DEGRADATION_WORDS = {"noise": "noise", "blur": "blur", "rain": "rain", "haze": "haze",
                             "lowlight": "lol", "sr": "sr", "enhancement": "en"}
"""restorezoo task -> the release's degradation word (``DEG_MAP``), which its template prompts build on."""


@lru_cache(maxsize=4)
def release_prompt_lists(checkout: str) -> dict[str, tuple[str, ...]]:
    """The word lists of the release's ``augment_prompt``, read (not imported) from a checkout's ``datasets.py``.

    Keys: ``init``, ``end`` (the two ``np.random.choice`` lists) and ``lol``, ``sr``, ``en`` (its
    fixed prompts of those tasks). restorezoo ships none of the release's text.
    """
    import ast
    from pathlib import Path

    path = Path(checkout).expanduser() / "datasets.py"
    if not path.is_file():
        raise FileNotFoundError(f"no datasets.py in {checkout}: give the folder of a mv-lab/InstructIR checkout")
    tree = ast.parse(path.read_text())
    found: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "augment_prompt":
            for stmt in ast.walk(node):
                if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
                    continue
                name, value = stmt.targets[0].id, stmt.value
                if isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.List):
                    value = value.args[0]  # init = np.random.choice([...])
                if isinstance(value, ast.List):
                    found[name.replace("_prompts", "")] = tuple(ast.literal_eval(value))
    missing = {"init", "end", "lol", "sr", "en"} - set(found)
    if missing:
        raise ValueError(f"{path}: augment_prompt lists {sorted(missing)} not found; is it the mv-lab/InstructIR release?")
    return found


def release_template_prompts(task: str, count: int, checkout: str, seed: int = RELEASE_SEED) -> list[str]:
    """The release's test prompts for ``count`` images of one test set, in order: its ``augment_prompt``
    fed from a ``np.random`` stream seeded with 42 (each set seeded alone, which is the release run
    on that set alone; the release runs one stream through all its sets in its config's order)."""
    import numpy as np

    word = RELEASE_DEGRADATION_WORDS.get(task)
    if word is None:
        raise ValueError(f"task {task!r} has no release degradation word; known: {', '.join(RELEASE_DEGRADATION_WORDS)}")
    lists = release_prompt_lists(checkout)
    rng = np.random.RandomState(seed)
    prompts = []
    for _ in range(count):
        text = f"{rng.choice(lists['init'])} {word} {rng.choice(lists['end'])}"
        for special in ("lol", "sr", "en"):  # the release tests `special in word`, in this order
            if special in word:
                text = str(rng.choice(lists[special]))
                break
        prompts.append(text.strip().replace("  ", " ").replace("\n", ""))
    return prompts
