"""restorezoo's instruction generator: size, uniqueness, the template- and vocabulary-disjoint split."""

from __future__ import annotations

from collections import Counter

import pytest

from restorezoo.data import instructions as gen
from restorezoo.data.instructions import (
    GENERAL_TASK,
    HANDWRITTEN,
    REGISTERS,
    generate_instructions,
    held_out_vocabulary,
    instruction_table,
)
from restorezoo.data.prompts import INSTRUCTIR_TASKS, hand_written, instructions


def test_at_least_ten_thousand_distinct_generated_instructions_over_the_seven_tasks():
    rows = [r for r in generate_instructions() if r.split in ("train", "test")]
    texts = [r.text for r in rows]
    assert len(texts) >= 10_000
    assert len(set(texts)) == len(texts), "every string once"
    assert {r.task for r in rows} == set(INSTRUCTIR_TASKS)
    per_task = Counter(r.task for r in rows)
    assert min(per_task.values()) >= 1_000, per_task


def test_no_string_has_two_tasks_and_the_bank_is_included():
    table = instruction_table()
    owner: dict[str, str] = {}
    for row in table:
        assert owner.setdefault(row.text, row.task) == row.task, row.text
    bank = {s for task in INSTRUCTIR_TASKS for s in hand_written(task)}
    assert bank <= set(owner), "the hand-written bank is part of the set"
    for task in INSTRUCTIR_TASKS:  # a bank sentence the generator also writes keeps the bank's task
        assert all(owner[s] == task for s in hand_written(task))


def test_held_out_split_is_disjoint_by_template_and_by_vocabulary():
    rows = generate_instructions()
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    assert len(test) >= 1_000 and len(train) >= 8 * len(test) // 2
    assert not {r.template for r in train} & {r.template for r in test}
    vocab_train = {r.vocabulary for r in train if r.vocabulary}
    vocab_test = {r.vocabulary for r in test if r.vocabulary}
    assert vocab_test and not vocab_train & vocab_test
    assert not {r.text for r in train} & {r.text for r in test}


def test_hand_written_training_sentences_never_use_a_held_out_word():
    held = held_out_vocabulary()
    for row in instruction_table():
        if row.register == HANDWRITTEN and row.split == "train":
            assert not gen._uses(row.text, held), row.text


def test_every_register_has_training_and_held_out_sentences_for_every_task():
    rows = generate_instructions()
    seen = Counter((r.register, r.task, r.split) for r in rows)
    for register in REGISTERS:
        tasks = (GENERAL_TASK,) if register == "general" else INSTRUCTIR_TASKS
        for task in tasks:
            for split in ("train", "test"):
                assert seen[register, task, split] > 0, (register, task, split)


def test_ambiguous_prompts_keep_their_task_and_general_ones_go_to_enhancement():
    rows = {r.text: r for r in generate_instructions()}
    # The paper's "Basic & Ambiguous" example and its Table 1 "General" row, as the generator writes them.
    assert rows["Remove the tiny dots in this image"].task == "noise"
    assert rows["Remove the tiny dots in this image"].register == "ambiguous"
    assert rows["Fix my image please"].task == GENERAL_TASK == "enhancement"
    assert rows["Improve the quality of this image"].register == "general"
    without = generate_instructions(general_task=None)
    assert not any(r.register == "general" for r in without)
    assert "Fix my image please" in instructions("enhancement", "all")


@pytest.mark.parametrize("task", ["noise", "lowlight"])
def test_misspelt_register_misspells(task: str):
    misspelt = [r.text for r in generate_instructions() if r.register == "misspelt" and r.task == task]
    typos = ("remvoe", "teh", "plz", "plese", "realy", "mak ", "off ", "remoev", "cn ", "wnat")
    assert misspelt and all(any(w in t for w in typos) for t in misspelt)
    assert gen._typo("noise") == "niose"


def test_prompts_instructions_serve_the_generated_split():
    held = instructions("rain", "test")
    train = instructions("rain", "train")
    assert len(train) > 1_000 and len(held) > 100
    assert not set(held) & set(train)
    assert sorted(held + train) == sorted(instructions("rain", "all"))
