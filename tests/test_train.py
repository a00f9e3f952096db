"""Training: presets, class weights, schedules, the CNN learning a separable set, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from pdfsg.errors import ModelError, ParamsError  # noqa: E402
from pdfsg.params import PdfParams  # noqa: E402

LABELS = (2, 14, 62, 139, 194, 225)


def make_dataset(
    path: Path,
    *,
    n_per_class: int | dict[int, int] = 40,
    labels: tuple[int, ...] = LABELS,
    params: PdfParams | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    noise: float = 0.05,
    label_set: str = "synthetic",
    manifest_labels: tuple[int, ...] | None = None,
) -> Path:
    """A small dataset file of class-dependent Gaussian-bump curves in the real layout
    (``n_per_class`` rows of each label, or label -> rows; ``manifest_labels`` the file's
    label set, default ``labels``)."""
    from pdfsg.datasets import write_dataset_file

    params = params or PdfParams()
    r = params.r_grid()
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(1234).uniform(r[0] + 1, r[-1] - 1, size=(len(labels), 4))
    G, sg, split = [], [], []
    per = n_per_class if isinstance(n_per_class, dict) else dict.fromkeys(labels, n_per_class)
    for c, lab in enumerate(labels):
        for i in range(per[lab]):
            g = np.zeros_like(r)
            for mu in centers[c] + rng.normal(0, 0.1, size=4):
                g += rng.uniform(0.7, 1.3) * np.exp(-0.5 * ((r - mu) / 0.25) ** 2)
            g += noise * rng.normal(size=r.size) - 0.3
            G.append(g)
            sg.append(lab)
            split.append(1 if i < int(test_fraction * per[lab]) else 0)
    split_a = np.asarray(split, dtype=np.int8)
    order = np.argsort(split_a, kind="stable")
    counts = {str(lab): per[lab] for lab in labels}
    return write_dataset_file(
        path,
        ids=[f"syn-{i}" for i in range(len(sg))],
        formula=["X" for _ in sg],
        space_group=np.asarray(sg)[order],
        G=np.asarray(G, dtype=np.float32)[order],
        split=split_a[order],
        params=params,
        manifest={
            "label_set": label_set,
            "labels": list(manifest_labels or labels),
            "counts": counts,
            "source": {"kind": "synthetic bumps", "seed": seed},
        },
    )


BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
SMALL_CNN = {"filters": (16, 8), "kernel_size": 8, "hidden": 16}


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("syn") / "syn.h5")


@pytest.fixture(scope="module")
def ds(syn):
    from pdfsg.datasets import read_dataset

    return read_dataset(syn)


def test_paper_preset_is_the_paper_protocol():
    from pdfsg.train import PRESETS, get_preset

    p = get_preset("paper")
    assert p.kind == "cnn-paper" and p.model == PRESETS["cnn-paper"].model
    assert p.model == {"filters": (256, 64), "kernel_size": 32, "hidden": 128}
    t = p.train
    assert (t.epochs, t.batch_size, t.lr, t.optimizer) == (164, 64, 0.1, "adam")
    assert (t.schedule, t.milestones, t.gamma) == ("step", (81, 122), 0.1)
    assert (t.ensemble, t.class_weight) == (3, "inverse")
    s1 = [n for n in PRESETS if n.startswith("s1-")]
    assert len(s1) == 10 and "s1-128-32-k24-h128-e2" in s1 and "s1-256-64-k32-h128-e3" in s1
    assert PRESETS["s1-128-64-k16-h128-e2"].model["kernel_size"] == 16
    with pytest.raises(ModelError, match="unknown model/preset"):
        get_preset("resnet-9000")


def test_class_weights_and_schedules():
    from pdfsg.train import TrainConfig, class_weights, lr_factor

    y = np.array([0, 0, 0, 1])
    assert np.allclose(class_weights(y, 3, "inverse"), [4 / 3, 4, 0])  # N / n_c
    w = class_weights(y, 3, "sqrt-inverse")
    assert np.isclose((w[y]).mean(), 1.0) and w[1] > w[0] and w[2] == 0
    assert np.allclose(class_weights(y, 3, "none"), [1, 1, 0])

    paper = TrainConfig()
    spe = 10
    assert lr_factor(0, spe, paper) == 1.0
    assert lr_factor(80 * spe + 9, spe, paper) == 1.0
    assert np.isclose(lr_factor(81 * spe, spe, paper), 0.1)
    assert np.isclose(lr_factor(122 * spe, spe, paper), 0.01)
    cos = TrainConfig(schedule="cosine", epochs=10, warmup_epochs=1, min_lr_factor=0.0)
    assert np.isclose(lr_factor(0, spe, cos), 0.1)  # warm-up
    assert np.isclose(lr_factor(spe, spe, cos), 1.0)
    assert lr_factor(10 * spe - 1, spe, cos) < 0.01


def test_cnn_overfits_a_separable_set(tmp_path):
    """The full-size paper CNN learns 6 separable classes (72 training rows) in 3 epochs."""
    from pdfsg.train import train

    small = make_dataset(tmp_path / "s.h5", n_per_class=16)
    res = train(small, "cnn-paper", tmp_path / "m", epochs=3, lr=1e-3, ensemble=1, device="cpu")
    rows = res.history["members"][0]
    assert len(rows) == 3
    assert rows[-1]["train_acc"] > 0.9
    assert res.metrics["top_k_accuracy"]["1"] > 0.8
    assert (tmp_path / "m" / "manifest.json").is_file()
    assert (tmp_path / "m" / "history.json").is_file()


class _Stop(Exception):
    pass


def test_resume_equals_uninterrupted_run(ds, tmp_path):
    """2 + 1 epochs (interrupted after epoch 2 of member 1, resumed) == 3 epochs at once."""
    from pdfsg.train import train

    kw = dict(epochs=3, ensemble=2, lr=3e-3, device="cpu", model_overrides=SMALL_CNN, batch_size=32)
    full = train(ds, "cnn-paper", tmp_path / "a", **kw)

    def stop_after_second_epoch(ev):
        if ev.stage == "epoch" and ev.member == 1 and ev.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        train(ds, "cnn-paper", tmp_path / "b", progress=stop_after_second_epoch, **kw)
    assert not (tmp_path / "b" / "manifest.json").exists()
    resumed = train(ds, "cnn-paper", tmp_path / "b", resume=True, **kw)
    for na, nb in zip(full.classifier.networks, resumed.classifier.networks, strict=True):
        for (ka, va), (kb, vb) in zip(
            na.state_dict().items(), nb.state_dict().items(), strict=True
        ):
            assert ka == kb and torch.equal(va, vb), ka
    assert all(
        {k: v for k, v in ra.items() if k != "seconds"}
        == {k: v for k, v in rb.items() if k != "seconds"}
        for ma, mb in zip(full.history["members"], resumed.history["members"], strict=True)
        for ra, rb in zip(ma, mb, strict=True)
    )
    # resuming a finished run just re-saves it; other settings are refused
    with pytest.raises(ModelError, match="other settings"):
        train(ds, "cnn-paper", tmp_path / "b", resume=True, **{**kw, "lr": 0.5})
    with pytest.raises(ModelError, match="already holds a training checkpoint"):
        train(ds, "cnn-paper", tmp_path / "b", **kw)


def test_checkpoint_errors(ds, tmp_path):
    from pdfsg.train import CHECKPOINT, load_checkpoint, train

    with pytest.raises(ModelError, match="checkpoint not found"):
        train(ds, "cnn-paper", tmp_path / "none", resume=True, device="cpu")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CHECKPOINT).write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(ModelError, match="corrupted") as info:
        load_checkpoint(bad / CHECKPOINT)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="corrupted"):
        train(ds, "cnn-paper", bad, resume=True, device="cpu")


def test_augment_hook_and_progress(ds, tmp_path):
    from pdfsg.train import train

    calls = []

    def augment(g, rng):
        calls.append(g.shape)
        return g + 0.01 * rng.normal(size=g.shape)

    events = []
    train(
        ds,
        "pdfsg-net",
        tmp_path / "n",
        epochs=2,
        batch_size=64,
        device="cpu",
        augment=augment,
        progress=events.append,
        model_overrides={"stem_channels": 8, "stages": [[8, 2, 1], [16, 2, 2]]},
    )
    assert calls and all(s[1] == ds.X.shape[1] for s in calls)
    stages = [e.stage for e in events]
    assert stages.count("epoch") == 2 and "batch" in stages
    assert events[-1].done_batches == events[-1].total_batches
    training = json.loads((tmp_path / "n" / "manifest.json").read_text())["training"]
    assert training["augmented"] is True and "augment" not in training  # says no more


def test_on_the_fly_share_is_recorded_in_the_manifest(ds, tmp_path):
    from pdfsg.augment import AugmentConfig, on_the_fly
    from pdfsg.train import train

    train(
        ds,
        "pdfsg-net",
        tmp_path / "n",
        epochs=1,
        batch_size=64,
        device="cpu",
        augment=on_the_fly(AugmentConfig(), ds.params, share=0.4),
        model_overrides={"stem_channels": 8, "stages": [[8, 2, 1], [16, 2, 2]]},
    )
    training = json.loads((tmp_path / "n" / "manifest.json").read_text())["training"]
    assert training["augment"]["share_of_rows"] == 0.4
    assert training["augment"]["config"]["p_particle"] == 0.3


def test_empty_training_split(tmp_path):
    from pdfsg.datasets import read_dataset
    from pdfsg.errors import DatasetError
    from pdfsg.train import train

    ds = read_dataset(make_dataset(tmp_path / "t.h5", n_per_class=4, test_fraction=1.0))
    with pytest.raises(DatasetError, match="no training rows"):
        train(ds, "logreg-x", tmp_path / "o")


def test_cli_train_logreg_and_errors(syn, tmp_path, capsys):
    from pdfsg.cli import main

    out = tmp_path / "lr"
    rc = main(
        ["train", str(syn), "--model", "logreg-x", "--out", str(out), "--max-train", "120",
         "--no-progress", "--set", "alphas=[0.001]", "--set", "l1_ratios=[0.5]"]
    )  # fmt: skip
    assert rc == 0
    assert "test top-1" in capsys.readouterr().out
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "logreg" and manifest["training"]["dataset"]["n_train"] == 120
    assert manifest["training"]["cross_validation"]["chosen"] == {"alpha": 0.001, "l1_ratio": 0.5}

    rc = main(["train", str(syn), "--model", "nope", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "unknown model/preset" in err

    for extra, says in (([], "--augment-share needs --augment"), (["--augment"], "share")):
        rc = main(["train", str(syn), "--model", "pdfsg-net", "--out", str(tmp_path / "y"),
                   "--augment-share", "1.5", *extra])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "--augment-share" in err and says in err


# --------------------------------------------------------------------------- every group

#: rows per group of a small all230 dataset (a quarter of each are test rows): with
#: min_per_group 10, 225 (12 rows, 9 training) and 1 (4 rows) are left out, 194 (16, 12) kept
ALL_COUNTS = {1: 4, 2: 40, 14: 40, 62: 40, 139: 40, 194: 16, 225: 12}


@pytest.fixture(scope="module")
def every_group(tmp_path_factory) -> Path:
    from pdfsg.spacegroups import label_set

    return make_dataset(
        tmp_path_factory.mktemp("all") / "all.h5",
        n_per_class=ALL_COUNTS,
        labels=tuple(ALL_COUNTS),
        label_set="all230",
        manifest_labels=label_set("all230"),
    )


def test_min_per_group_counts_structures_not_augmented_copies(every_group):
    import dataclasses

    from pdfsg.datasets import read_dataset
    from pdfsg.train import DEFAULT_MIN_PER_GROUP, select_groups, structure_counts

    ds = read_dataset(every_group)
    assert structure_counts(ds) == {1: 3, 2: 30, 14: 30, 62: 30, 139: 30, 194: 12, 225: 9}
    picked = select_groups(ds)  # the default N for an all230 dataset
    assert DEFAULT_MIN_PER_GROUP == 10 and picked.labels == (2, 14, 62, 139, 194)
    assert picked.manifest["label_set"] == "all" and picked.manifest["min_per_group"] == 10
    dropped = picked.manifest["dropped_below_min_per_group"]
    assert dropped == {
        "rows": 16, "train_rows": 12, "test_rows": 4, "validation_rows": 0, "groups": [1, 225]
    }  # fmt: skip
    assert len(picked) == len(ds) - 16 and set(picked.y.tolist()) == set(picked.labels)
    assert (picked.class_index() >= 0).all()
    assert select_groups(picked) is picked  # already selected
    # 194's 12 training structures as 4 structures with 2 augmented copies each: 4 < 10
    ids = ds.ids.copy()
    rows = np.flatnonzero((ds.y == 194) & (ds.split == 0))
    ids[rows] = [f"s194-{k // 3}" + ("" if k % 3 == 0 else f"#aug{k % 3}") for k in range(12)]
    copies = dataclasses.replace(ds, ids=ids)
    assert structure_counts(copies)[194] == 4
    assert 194 not in select_groups(copies).labels
    assert select_groups(ds, 3).labels == (1, 2, 14, 62, 139, 194, 225)
    with pytest.raises(ParamsError, match="min_per_group must be >= 1"):
        select_groups(ds, 0)
    with pytest.raises(ParamsError, match="only 0 space group"):
        select_groups(ds, 31)


def test_min_per_group_is_refused_for_a_dataset_of_fewer_groups(ds):
    from pdfsg.train import select_groups

    assert select_groups(ds) is ds  # no option: nothing to select
    with pytest.raises(ParamsError, match="needs a dataset of every space group"):
        select_groups(ds, 5)


def test_cli_train_on_every_group_records_the_selection(every_group, tmp_path, capsys):
    import json

    from pdfsg.artifact import load_model
    from pdfsg.cli import main

    out = tmp_path / "all"
    rc = main(
        ["train", str(every_group), "--model", "logreg-x", "--out", str(out), "--no-progress",
         "--min-per-group", "10", "--set", "alphas=[0.001]", "--set", "l1_ratios=[0.5]"]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "5 space groups with >= 10 training structures; dropped 16 rows" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["label_set"] == "all" and manifest["min_per_group"] == 10
    assert manifest["labels"] == [2, 14, 62, 139, 194]
    described = manifest["training"]["dataset"]
    assert described["dropped_below_min_per_group"]["groups"] == [1, 225]
    assert described["n_train"] == 4 * 30 + 12
    assert manifest["metrics"]["n"] == 4 * 10 + 4  # the kept groups' test rows
    assert load_model(out).labels == (2, 14, 62, 139, 194)
    rc = main(["train", str(every_group), "--model", "logreg-x", "--out", str(tmp_path / "x"),
               "--min-per-group", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--min-per-group must be >= 1" in err


def test_init_from_fine_tunes_a_trained_network(ds, tmp_path):
    """A fine-tune at a vanishing learning rate keeps the start network's weights (batch-norm
    statistics aside, which a training pass updates); the manifest names the start model and
    the training ids cover both runs; a network of other settings, or of none of the data's
    groups, is refused in one line; other groups map class by class."""
    from pdfsg.artifact import read_training_ids
    from pdfsg.train import train

    kw = dict(ensemble=1, device="cpu", model_overrides=SMALL_CNN, batch_size=32)
    start = train(ds, "cnn-paper", tmp_path / "start", epochs=2, lr=3e-3, **kw)

    def fine_tune(data, name):  # one epoch at a vanishing rate: the start weights kept
        return train(
            data,
            "cnn-paper",
            tmp_path / name,
            epochs=1,
            lr=1e-12,
            init_from=tmp_path / "start",
            train_overrides={"warmup_epochs": 0.0, "weight_decay": 0.0},
            **kw,
        )

    tuned = fine_tune(ds, "tuned")
    fresh = train(ds, "cnn-paper", tmp_path / "fresh", epochs=1, lr=1e-12, **kw)

    def weights(result):
        state = result.classifier.state_dicts()[0]
        return {k: v for k, v in state.items() if not k.endswith(BN_STATS)}

    a, b, c = weights(start), weights(tuned), weights(fresh)
    assert a.keys() == b.keys() and len(a) > 2
    assert all(np.allclose(a[k], b[k], atol=1e-8) for k in a)
    assert not all(np.allclose(a[k], c[k]) for k in a)
    import json

    manifest = json.loads((tmp_path / "tuned" / "manifest.json").read_text())
    assert manifest["training"]["initialised_from"]["model"]
    assert read_training_ids(tmp_path / "tuned") == read_training_ids(tmp_path / "start")
    with pytest.raises(ModelError, match=r"init-from .*network settings differ") as info:
        train(
            ds,
            "cnn-paper",
            tmp_path / "other",
            epochs=1,
            init_from=tmp_path / "start",
            **{**kw, "model_overrides": {**SMALL_CNN, "hidden": 8}},
        )
    assert "\n" not in str(info.value)
    # a dataset of other groups: the shared groups' output rows start from the model's, the
    # new group's from a fresh initialisation, every other weight from the model
    other = (*LABELS[1:4], 227)  # 14, 62, 139 shared; 227 new
    data = make_dataset(tmp_path / "other.h5", labels=other)
    moved = fine_tune(data, "moved")
    d = weights(moved)
    per_class = [k for k in a if a[k].shape != d[k].shape]
    assert per_class and all(a[k].shape[0] == len(LABELS) for k in per_class)
    for k in a:
        if k in per_class:
            assert np.allclose(d[k][:3], a[k][1:4], atol=1e-8)  # rows of 14, 62, 139
            assert not np.allclose(d[k][3], a[k][0])
        else:
            assert np.allclose(d[k], a[k], atol=1e-8)
    manifest = json.loads((tmp_path / "moved" / "manifest.json").read_text())
    start_record = manifest["training"]["initialised_from"]
    assert start_record["groups_shared"] == 3 and start_record["groups_new"] == 1
    with pytest.raises(ModelError, match=r"^--init-from: .*nothing.*not found"):
        train(ds, "cnn-paper", tmp_path / "m", epochs=1, init_from=tmp_path / "nothing", **kw)
    none = make_dataset(tmp_path / "none.h5", labels=(1, 230))
    with pytest.raises(ModelError, match="none of the dataset's space groups"):
        train(none, "cnn-paper", tmp_path / "n", epochs=1, init_from=tmp_path / "start", **kw)
