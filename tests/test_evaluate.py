"""Top-k accuracy, confusion matrix, group-subgroup reading, `pdfsg evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from test_train import LABELS, make_dataset  # noqa: E402

from pdfsg.errors import DatasetError  # noqa: E402
from pdfsg.evaluate import (  # noqa: E402
    confusion_matrix,
    delta_top_k,
    evaluate,
    evaluate_proba,
    per_class_accuracy,
    top_confusions,
    top_k_accuracy,
)
from pdfsg.params import PdfParams  # noqa: E402


def test_top_k_by_hand():
    proba = np.array(
        [
            [0.5, 0.3, 0.2, 0.0],  # true 0: rank 1
            [0.5, 0.3, 0.2, 0.0],  # true 2: rank 3
            [0.1, 0.2, 0.3, 0.4],  # true 1: rank 3
            [0.4, 0.1, 0.2, 0.3],  # true 3: rank 2
        ]
    )
    y = np.array([0, 2, 1, 3])
    acc = top_k_accuracy(proba, y, range(1, 6))
    assert acc == {1: 0.25, 2: 0.5, 3: 1.0, 4: 1.0, 5: 1.0}
    assert delta_top_k(acc) == {2: 0.25, 3: 0.5, 4: 0.0, 5: 0.0}
    pred = proba.argmax(1)  # 0, 0, 3, 0
    cm = confusion_matrix(y, pred, 4)
    assert cm[0, 0] == 1 and cm[2, 0] == 1 and cm[1, 3] == 1 and cm[3, 0] == 1
    assert np.allclose(cm.sum(1), 1)
    counts = confusion_matrix(y, pred, 4, normalize=False)
    assert counts.sum() == 4
    assert np.array_equal(per_class_accuracy(y, pred, 5)[:4], [1, 0, 0, 0])
    assert np.isnan(per_class_accuracy(y, pred, 5)[4])


def test_top_confusions_read_group_subgroup_relations():
    labels = (2, 14, 225)  # P-1, P2_1/c, Fm-3m
    cm = np.array([[0.6, 0.3, 0.1], [0.05, 0.95, 0.0], [0.0, 0.2, 0.8]])
    top = top_confusions(cm, labels, k=3)
    assert [(c["true"], c["predicted"]) for c in top] == [(2, 14), (225, 14), (2, 225)]
    assert top[0]["rate"] == 0.3 and top[0]["true_symbol"] == "P-1"
    assert top[0]["relation"]["kind"] == "maximal subgroup"
    assert "P2_1/c" in top[0]["relation"]["detail"]


def test_evaluate_proba_json_document():
    proba = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.1 / 3
    ev = evaluate_proba(proba, np.array([0, 1, 2, 1]), (2, 14, 225))
    doc = ev.to_json()
    assert doc["n"] == 4 and doc["top_k_accuracy"]["1"] == 0.75
    assert set(doc["top_k_accuracy"]) == {"1", "2", "3", "4", "5", "6"}
    assert doc["per_class_accuracy"][1]["accuracy"] == 0.5
    assert doc["top_confusions"][0]["true"] == 14 and doc["top_confusions"][0]["predicted"] == 225
    json.dumps(doc)
    with pytest.raises(DatasetError, match="empty"):
        evaluate_proba(np.zeros((0, 3)), np.zeros(0), (2, 14, 225))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small trained pdfsg-net (2 epochs) and its dataset."""
    from pdfsg.train import train

    tmp = tmp_path_factory.mktemp("ev")
    path = make_dataset(tmp / "d.h5")
    train(
        path,
        "pdfsg-net",
        tmp / "model",
        epochs=2,
        device="cpu",
        model_overrides={"stem_channels": 8, "stages": [[8, 2, 1], [16, 2, 2]]},
    )
    return path, tmp / "model"


def test_cli_evaluate_writes_json_and_report(trained, tmp_path, capsys):
    from pdfsg.cli import main

    data, model = trained
    rc = main(
        ["evaluate", str(data), "--model", str(model), "--split", "all",
         "--json", str(tmp_path / "m.json"), "--report", str(tmp_path / "rep")]
    )  # fmt: skip
    assert rc == 0
    assert "A6" in capsys.readouterr().out
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["n"] == 240 and doc["split"] == "all"
    assert all(0 <= doc["top_k_accuracy"][str(k)] <= 1 for k in range(1, 7))
    assert doc["top_k_accuracy"]["6"] == 1.0  # 6 classes
    assert len(doc["per_class_accuracy"]) == len(LABELS)
    assert doc["per_class_accuracy"][0]["n_train"] == 30
    names = ("top_k_accuracy", "accuracy_per_group", "confusion_matrix", "learning_curves")
    for name in (*names, "reliability"):
        png = tmp_path / "rep" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
    cal = doc["calibration"]
    assert 0 <= cal["ece"] <= 1 and sum(cal["reliability"]["count"]) == 240
    assert cal["top1_accuracy"] == pytest.approx(doc["top_k_accuracy"]["1"])


def test_calibration_summary_on_known_numbers():
    from pdfsg.evaluate import calibration_summary

    # 100 rows answered at 0.95, 90 right: over-confident by 5 points; sets of threshold 0.04
    # hold the top class and the 0.05 runner-up, so they cover every row
    proba = np.tile([0.95, 0.05, 0.0], (100, 1))
    y = np.array([0] * 90 + [1] * 10)
    cal = calibration_summary(proba, y, conformal_threshold=0.04)
    assert cal["ece"] == pytest.approx(0.05)
    assert cal["wrong_at_90"] == pytest.approx(0.10) and cal["n_answers_at_90"] == 100
    assert cal["prediction_set"]["coverage"] == 1.0
    assert cal["prediction_set"]["mean_size"] == 2.0


def test_evaluate_refuses_mismatched_data(trained, tmp_path, capsys):
    from pdfsg.artifact import load_model
    from pdfsg.cli import main
    from pdfsg.datasets import read_dataset

    _, model_dir = trained
    model = load_model(model_dir)
    other = make_dataset(tmp_path / "q.h5", n_per_class=3, params=PdfParams(qmax=20.0))
    with pytest.raises(DatasetError, match=r"other PdfParams than the model \(qmax 20"):
        evaluate(model, read_dataset(other))
    rc = main(["evaluate", str(other), "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "other PdfParams" in err

    more = make_dataset(tmp_path / "l.h5", n_per_class=3, labels=(*LABELS, 230))
    with pytest.raises(DatasetError, match="label set mismatch"):
        evaluate(model, read_dataset(more))

    no_test = make_dataset(tmp_path / "e.h5", n_per_class=3, test_fraction=0.0)
    with pytest.raises(DatasetError, match="test split of the dataset is empty"):
        evaluate(model, read_dataset(no_test), "test")
    assert evaluate(model, read_dataset(no_test), "train").n == 18


def test_training_ids_are_recorded_and_overlap_is_warned(trained, tmp_path, capsys):
    from pdfsg.artifact import TRAINING_IDS, load_model, read_training_ids, structure_id_hash
    from pdfsg.cli import main
    from pdfsg.datasets import read_dataset, write_dataset_file

    data, model_dir = trained
    ds = read_dataset(data)
    train_ids = [str(i) for i in ds.ids[ds.split == 0]]
    assert (model_dir / TRAINING_IDS).is_file()
    recorded = read_training_ids(model_dir)
    assert recorded == {structure_id_hash(i) for i in train_ids} and len(recorded) == 180

    model = load_model(model_dir)
    clean = evaluate(model, ds, "test")
    assert clean.training_overlap == {
        "checked": True, "n": 60, "n_seen": 0, "fraction": 0.0, "examples": []
    }  # fmt: skip
    assert clean.warnings == []
    seen = evaluate(model, ds, "train")
    assert seen.training_overlap["n_seen"] == 180 and seen.training_overlap["fraction"] == 1.0
    assert seen.warnings[0].startswith("180 of 180 train rows (100%) are structures the model")

    # augmented copies of training structures, put in a test split: mapped to their parents
    rows = np.flatnonzero(ds.split == 0)[:20]
    leaked = write_dataset_file(
        tmp_path / "leak.h5",
        ids=[f"{ds.ids[i]}#aug2" for i in rows],
        formula=["X"] * rows.size,
        space_group=ds.y[rows],
        G=ds.G[rows],
        split=np.ones(rows.size, dtype=np.int8),
        params=ds.params,
        manifest={k: ds.manifest[k] for k in ("label_set", "labels", "counts", "source")},
    )
    assert main(["evaluate", str(leaked), "--model", str(model_dir)]) == 0
    out, err = capsys.readouterr()
    assert "A1" in out
    assert err.startswith("pdfsg evaluate: warning: 20 of 20 test rows (100%) are structures")
    assert f"{ds.ids[rows[0]]}#aug2" in err and err.count("\n") == 1


#: the family default.json names
DEFAULT_FAMILY = "pdfsg-v8"


def test_evaluate_takes_the_shipped_names_and_lists_them(tmp_path, capsys):
    from pdfsg.cli import main
    from pdfsg.predict import resolve_model_paths, shipped_model_names

    shipped = shipped_model_names()
    assert {"default", "shipped", "pdfsg-v3", "pdfsg-v3-r30", "pdfsg-v2", "pdfsg-v2-r20"} <= set(
        shipped
    )
    assert resolve_model_paths("shipped") == resolve_model_paths(DEFAULT_FAMILY)
    assert resolve_model_paths("shipped") == resolve_model_paths("default")
    assert resolve_model_paths("pdfsg-v2")[0].name == "pdfsg-v2-r30"

    v2 = resolve_model_paths("pdfsg-v2")[0]
    labels = tuple(json.loads((v2 / "manifest.json").read_text())["labels"])
    data = make_dataset(tmp_path / "p45.h5", n_per_class=4, labels=labels)
    results = {}
    for name in ("pdfsg-v2-r30", "pdfsg-v2"):
        argv = ["evaluate", str(data), "--model", name, "--json", str(tmp_path / "m.json")]
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert "model pdfsg-v2-r30" in out and "n = 45" in out
        assert "records no training ids" in err and "cannot be checked" in err
        doc = json.loads((tmp_path / "m.json").read_text())
        assert doc["training_overlap"] == {"checked": False, "n": 45}
        results[name] = doc["top_k_accuracy"]
    assert results["pdfsg-v2-r30"] == results["pdfsg-v2"]

    assert main(["evaluate", str(data), "--model", "pdfsg-v99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "model 'pdfsg-v99' not found" in err and "shipped: default, shipped" in err
    assert "pdfsg-v2" in err and "pdfsg-v3-r30" in err
    # the shipped default, an ensemble, evaluates too (its members record the training ids)
    assert main(["evaluate", str(data), "--model", "shipped"]) == 0
    assert f"model {DEFAULT_FAMILY}-r30" in capsys.readouterr().out


def test_label_set_protocol_and_breakdown_of_a_model_of_more_groups(tmp_path, capsys):
    """A 50-group model: the paper's protocol (--label-set paper45) scores the 45 groups'
    rows ranked among the 45, and equals the breakdown of the unrestricted evaluation."""
    from conftest import make_logreg_model

    from pdfsg.artifact import load_model
    from pdfsg.cli import main
    from pdfsg.datasets import read_dataset
    from pdfsg.spacegroups import label_set

    paper45 = label_set("paper45")
    extra = (1, 3, 5, 146, 229)
    labels50 = tuple(sorted(paper45 + extra))
    intercept = [2.0 if g in extra else 0.0 for g in labels50]
    folder = make_logreg_model(tmp_path / "m50", labels50, intercept=intercept)
    model = load_model(folder)
    data = make_dataset(tmp_path / "d.h5", n_per_class=8, labels=(1, 2, 14, 146, 225))
    ds = read_dataset(data)
    full = evaluate(model, ds, "all")
    assert full.n == 40 and full.label_set == {"name": "all", "n_groups": 50, "model_groups": 50}
    rows45 = full.breakdown["paper45_rows"]
    assert rows45["n"] == 24
    within = rows45["top_k_accuracy_within_45"]
    assert all(within[k] >= rows45["top_k_accuracy"][k] for k in within)  # fewer rivals
    systems = full.breakdown["per_crystal_system"]
    assert {cs: e["n"] for cs, e in systems.items()} == {
        "triclinic": 16, "monoclinic": 8, "trigonal": 8, "cubic": 8
    }  # fmt: skip
    paper = evaluate(model, ds, "all", label_set="paper45")
    assert paper.n == 24 and paper.labels == paper45
    assert paper.label_set == {"name": "paper45", "n_groups": 45, "model_groups": 50}
    assert {str(k): v for k, v in paper.top_k.items()} == within
    assert "left out of the all rows: 16 rows of groups outside paper45" in paper.warnings
    assert "paper45_rows" not in paper.breakdown and "per_crystal_system" in paper.breakdown
    assert main(["evaluate", str(data), "--model", str(folder), "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert "rows of the paper's 45 groups (n = 24)" in out and "triclinic (n = 16)" in out
    rc = main(["evaluate", str(data), "--model", str(folder), "--split", "all",
               "--label-set", "paper45", "--json", str(tmp_path / "m.json")])  # fmt: skip
    assert rc == 0 and "label set paper45 (45 groups)" in capsys.readouterr().out
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["label_set"]["name"] == "paper45" and doc["n"] == 24
    assert main(["evaluate", str(data), "--model", str(folder), "--label-set", "p45"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label-set: unknown label set 'p45'" in err


def test_a_model_of_every_group_leaves_out_rows_of_the_groups_it_lacks(tmp_path):
    from pdfsg.artifact import load_model
    from pdfsg.datasets import read_dataset
    from pdfsg.spacegroups import label_set
    from pdfsg.train import train

    counts = {1: 4, 2: 40, 14: 40, 62: 40, 139: 40, 194: 16, 225: 12}
    data = make_dataset(tmp_path / "all.h5", n_per_class=counts, labels=tuple(counts),
                        label_set="all230", manifest_labels=label_set("all230"))  # fmt: skip
    train(data, "logreg-x", tmp_path / "m", train_overrides={"alphas": [1e-3], "l1_ratios": [0.5]})
    model = load_model(tmp_path / "m")
    assert model.manifest["label_set"] == "all" and model.labels == (2, 14, 62, 139, 194)
    ev = evaluate(model, read_dataset(data))
    assert ev.n == 44 and ev.dataset["rows_outside_model_groups"] == 4  # 1 of 1, 3 of 225
    assert "left out of the test rows: 4 rows of groups the model does not have" in ev.warnings
    assert ev.breakdown == {}  # 5 groups: no breakdown
