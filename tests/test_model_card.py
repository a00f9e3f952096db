"""The model card (tools/shipped_model.py write_card) says what a model ranks and saw."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def write_card():
    sys.path.insert(0, str(TOOLS))
    try:
        from shipped_model import write_card
    finally:
        sys.path.remove(str(TOOLS))
    return write_card


def _source(file, n, role, description):
    return {"file": file, "n": n, "role": role, "manifest_source": {"description": description}}


def _manifest(label_set=None, start=None, augment=None):
    training = {
        "dataset": {
            "n_train": 1000,
            "n_test": 100,
            "source": [
                _source("mp_all.h5", 500, "splits kept", None),
                _source("var.h5", 300, "every row trains, clean", "variants:12:mp.csv.gz"),
                _source("syn.h5", 200, "every row trains, clean", "synthetic:200,seed=0"),
            ],
        }
    }
    if start:
        training["initialised_from"] = start
    if augment:
        training["augment"] = augment
    m = {
        "kind": "pdfsg-net",
        "labels": list(range(1, 114)) if label_set else list(range(1, 46)),
        "params": {"rmin": 1.5, "rstep": 0.1366, "rmax": 30.0, "qmax": 23.0},
        "metrics": {},
        "training": training,
    }
    if label_set:
        m.update({"label_set": label_set, "min_per_group": 10})
    return m


def test_a_card_of_every_group_names_its_groups_variants_and_start_model(write_card, tmp_path):
    start = {"model": "pdfsg-v4-net-r30", "training_ids": 284790}
    write_card(tmp_path, _manifest("all", start))
    card = (tmp_path / "README.md").read_text()
    assert "over the 113 space groups with at least 10 training structures" in card
    assert "45 space groups only" not in card and "the 45 groups" not in card
    assert "**Structure-type variants**: 300 built" in card
    assert "**Synthetic crystals**: 200 PyXtal crystals" in card
    assert "Fine-tuned** from `pdfsg-v4-net-r30`" in card and "284,790" in card
    assert "on the fly" not in card and "variants:K` of the training" in card
    assert "clean curves only" in card


def test_a_card_says_which_share_of_rows_got_effects_on_the_fly(write_card, tmp_path):
    write_card(tmp_path, _manifest("all", augment={"share_of_rows": 0.4, "config": {}}))
    card = (tmp_path / "README.md").read_text()
    assert "**Measurement effects on the fly** for 40% of each batch's rows" in card
    assert "clean curves (measured-like on the fly, below)" in card


def test_a_card_of_the_paper_groups_says_so(write_card, tmp_path):
    manifest = _manifest()
    write_card(tmp_path, manifest)
    card = (tmp_path / "README.md").read_text()
    assert "over the paper's 45 space groups" in card and "45 space groups only" in card
    assert "Fine-tuned" not in card
    json.dumps(manifest)  # the card reads, never changes, the manifest
