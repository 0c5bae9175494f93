"""Specifications of the instruction bank and the task-name helpers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from restorezoo.data import prompts
from restorezoo.data.prompts import (
    INSTRUCTIR_TASKS,
    TASK_ALIASES,
    canonical_task,
    instructions,
    sample_instruction,
)


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def test_instructir_tasks_are_the_intent_classes_in_order() -> None:
    assert INSTRUCTIR_TASKS == ("noise", "blur", "rain", "haze", "lowlight", "sr", "enhancement")


@pytest.mark.parametrize("task", INSTRUCTIR_TASKS)
def test_each_task_has_enough_train_and_held_out_instructions(task: str) -> None:
    train, test, everything = instructions(task), instructions(task, "test"), instructions(task, "all")
    assert len(everything) >= 1000  # the hand-written bank plus the generated set (tests/test_instructions.py)
    assert len(test) >= 100
    assert 0.08 <= len(test) / len(everything) <= 0.3  # held out by template and vocabulary: 1/16 of the grid
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(everything)
    assert all(s.strip() == s and s for s in everything)


def test_held_out_split_is_deterministic() -> None:
    assert instructions("noise", "test") == instructions("noise", "test")
    assert instructions("haze", "train")[0] == instructions("haze", "all")[0]


def test_every_instruction_in_the_bank_is_distinct() -> None:
    bank = [s for task in INSTRUCTIR_TASKS for s in instructions(task, "all")]
    assert len(set(bank)) == len(bank)
    normalised = [_normalise(s) for s in bank]
    duplicates = {s for s in normalised if normalised.count(s) > 1}
    assert not duplicates, f"instructions differing only in case/punctuation: {duplicates}"


def test_bank_mixes_precise_and_lay_wording() -> None:
    lowlight = instructions("lowlight", "all")
    assert "it's too dark" in lowlight
    assert any(s[0].islower() for s in lowlight) and any(s[0].isupper() for s in lowlight)
    assert any(s.endswith("?") for s in instructions("noise", "all"))


@pytest.mark.parametrize(
    ("alias", "task"),
    [
        ("denoise", "noise"),
        ("deblur", "blur"),
        ("low-light", "lowlight"),
        ("low_light", "lowlight"),
        ("super-resolution", "sr"),
        ("superres", "sr"),
        ("derain", "rain"),
        ("dehaze", "haze"),
        ("enhance", "enhancement"),
        ("  Low-Light ", "lowlight"),
        ("SR", "sr"),
        ("jpeg", "jpeg"),
    ],
)
def test_canonical_task_maps_synonyms(alias: str, task: str) -> None:
    assert canonical_task(alias) == task


def test_every_canonical_task_maps_to_itself() -> None:
    for task in set(TASK_ALIASES.values()):
        assert canonical_task(task) == task
    for task in INSTRUCTIR_TASKS:
        assert task in TASK_ALIASES


def test_unknown_task_and_split_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown task 'fog'"):
        canonical_task("fog")
    with pytest.raises(ValueError, match="snow"):
        instructions("snow")  # a known task, but not one of InstructIR's seven
    with pytest.raises(ValueError, match="train, test, all"):
        instructions("noise", "val")


def test_instructions_accept_aliases() -> None:
    assert instructions("denoise") == instructions("noise")


def test_sample_instruction_is_seeded_and_stays_in_its_split() -> None:
    draws = [sample_instruction("rain", torch.Generator().manual_seed(s)) for s in range(40)]
    again = [sample_instruction("rain", torch.Generator().manual_seed(s)) for s in range(40)]
    assert draws == again
    assert set(draws) <= set(instructions("rain"))
    assert len(set(draws)) > 5
    held_out = sample_instruction("rain", torch.Generator().manual_seed(0), split="test")
    assert held_out in instructions("rain", "test")
    assert sample_instruction("blur") in instructions("blur")


def test_module_imports_nothing_heavier_than_torch() -> None:
    tree = ast.parse(Path(prompts.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    # restorezoo.data.instructions (the generated set) itself imports only the standard library.
    assert imported <= {"__future__", "collections", "types", "typing", "torch", "restorezoo"}
    tree = ast.parse(Path(prompts.__file__).with_name("instructions.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("restorezoo"):
            assert node.module == "restorezoo.data.prompts"
