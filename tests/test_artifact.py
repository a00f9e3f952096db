"""Model folders: save / load round trip, manifest content, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from pdfsg.artifact import check_compatible, load_model, read_manifest, save_model  # noqa: E402
from pdfsg.errors import DatasetError, ModelError  # noqa: E402
from pdfsg.models import LogRegClassifier, NetClassifier  # noqa: E402
from pdfsg.models.cnn import PaperCNNConfig, PdfsgNetConfig, build_network  # noqa: E402
from pdfsg.params import PdfParams  # noqa: E402

LABELS = (2, 14, 62, 139, 225)


def _net_classifier(kind: str, params: PdfParams, members: int = 2) -> NetClassifier:
    if kind == "cnn-paper":
        cfg = PaperCNNConfig(n_classes=5, npoints=params.npoints, filters=(8, 4), kernel_size=6)
    else:
        cfg = PdfsgNetConfig(
            n_classes=5,
            npoints=params.npoints,
            rmin=params.rmin,
            rstep=params.rstep,
            stem_channels=8,
            stages=((8, 2, 1), (16, 2, 2)),
        )
    nets = []
    for i in range(members):
        torch.manual_seed(i)
        net = build_network(kind, cfg)
        # non-trivial batch-norm statistics, so that buffers are part of the round trip
        net.train()
        with torch.no_grad():
            net(torch.rand(16, params.npoints))
        nets.append(net)
    return NetClassifier(kind, LABELS, params, cfg.to_dict(), nets)


def _logreg_classifier(feature: str, params: PdfParams) -> LogRegClassifier:
    from pdfsg.models.logreg import feature_dim

    rng = np.random.default_rng(0)
    d = feature_dim(params.npoints, feature)
    return LogRegClassifier(
        labels=LABELS,
        params=params,
        coef=rng.normal(size=(5, d)).astype(np.float32) * 0.1,
        intercept=rng.normal(size=5).astype(np.float32),
        config={"feature": feature, "alpha": 1e-5, "l1_ratio": 1.0},
    )


@pytest.mark.parametrize("kind", ["cnn-paper", "pdfsg-net", "logreg-x", "logreg-x2"])
def test_round_trip_gives_identical_probabilities(kind, tmp_path):
    params = PdfParams(rmax=20.0) if kind == "pdfsg-net" else PdfParams()
    if kind.startswith("logreg"):
        clf = _logreg_classifier(kind.split("-")[1], params)
    else:
        clf = _net_classifier(kind, params)
    X = np.random.default_rng(1).random((7, params.npoints)).astype(np.float32)
    before = clf.predict_proba(X)
    folder = save_model(
        tmp_path / "model",
        clf,
        training={"dataset": {"label_set": "paper45", "n": 10}},
        metrics={"top_k_accuracy": {"1": 0.5}},
    )
    # nothing pickled: every weight file reads back with weights_only=True / allow_pickle=False
    for f in folder.iterdir():
        if f.suffix == ".pt":
            torch.load(f, weights_only=True)
        if f.suffix == ".npz":
            np.load(f, allow_pickle=False)
    loaded = load_model(folder)
    assert loaded.kind == clf.kind and loaded.labels == LABELS
    assert loaded.params == params
    assert np.array_equal(loaded.predict_proba(X), before)
    assert np.allclose(before.sum(1), 1)
    m = read_manifest(folder)
    for key in ("kind", "config", "labels", "params", "preprocessing", "training", "metrics",
                "pdfsg_version", "created", "weights"):  # fmt: skip
        assert key in m
    if kind in ("cnn-paper", "pdfsg-net"):
        assert m["ensemble"] == 2 and len(m["weights"]) == 2


def test_copy_model_ships_only_the_artifact(tmp_path):
    from pdfsg.artifact import copy_model

    clf = _net_classifier("pdfsg-net", PdfParams(), members=1)
    src = save_model(tmp_path / "run", clf, history={"members": [[]]})
    (src / "checkpoint.pt").write_bytes(b"big")
    dst = copy_model(src, tmp_path / "pretrained" / "default")
    assert sorted(p.name for p in dst.iterdir()) == [
        "history.json",
        "manifest.json",
        "weights-0.npz",
    ]
    assert read_manifest(dst)["name"] == "default"
    X = np.random.default_rng(0).random((3, 209))
    assert np.array_equal(load_model(dst).predict_proba(X), clf.predict_proba(X))


def test_pdfsg_net_accepts_a_shorter_input_but_paper_cnn_refuses(tmp_path):
    params = PdfParams()
    net = _net_classifier("pdfsg-net", params, members=1)
    p = net.predict_proba(np.random.default_rng(0).random((2, 120)), start=3)
    assert p.shape == (2, 5)
    cnn = _net_classifier("cnn-paper", params, members=1)
    with pytest.raises(ModelError, match="expects the full grid of 209 points"):
        cnn.predict_proba(np.zeros((2, 120)))


def test_load_errors_are_one_line(tmp_path):
    clf = _net_classifier("cnn-paper", PdfParams(), members=1)
    folder = save_model(tmp_path / "m", clf)

    def one_line(match, path=folder, **kw):
        with pytest.raises(ModelError, match=match) as info:
            load_model(path, **kw)
        assert "\n" not in str(info.value)

    one_line("model folder not found", tmp_path / "nope" / "x")
    one_line("no model folder 'no-such-model' and no pretrained", "no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line("no manifest.json", empty)

    weights = folder / "weights-0.npz"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    one_line("corrupted \\(sha256")
    one_line("weight file is corrupted", verify=False)
    weights.unlink()
    one_line("weight file missing")
    weights.write_bytes(good)
    load_model(folder)
    state = dict(np.load(weights))
    state["features.1.weight"] = state["features.1.weight"][:, :, :-1]
    np.savez(weights, **state)
    one_line(
        r"weights do not fit the cnn-paper config \(weight 'features.1.weight' has shape",
        verify=False,
    )
    del state["features.1.weight"]
    np.savez(weights, **state)
    one_line("missing weight 'features.1.weight'", verify=False)
    weights.write_bytes(good)

    manifest = folder / "manifest.json"
    text = manifest.read_text()
    m = json.loads(text)
    m["labels"] = m["labels"][:-1]
    manifest.write_text(json.dumps(m))
    one_line("config has 5 classes but 4 labels")
    manifest.write_text(text[:50])
    one_line("manifest is corrupted")
    manifest.write_text(json.dumps({"format": "something-else"}))
    one_line("not a pdfsg model manifest")


def test_one_vs_rest_logreg_round_trips_and_bad_link_is_refused(tmp_path):
    clf = _logreg_classifier("x", PdfParams())
    clf.config["multiclass"] = "ovr"
    X = np.random.default_rng(2).random((4, clf.npoints)).astype(np.float32)
    folder = save_model(tmp_path / "ovr", clf)
    back = load_model(folder)
    assert back.multiclass == "ovr"
    assert np.allclose(back.predict_proba(X), clf.predict_proba(X))
    clf.config["multiclass"] = "multinomial"  # the same scores through softmax differ
    assert not np.allclose(back.predict_proba(X), clf.predict_proba(X))
    manifest = folder / "manifest.json"
    m = json.loads(manifest.read_text())
    m["config"]["multiclass"] = "softmax-ish"
    manifest.write_text(json.dumps(m))
    with pytest.raises(ModelError, match="unknown multiclass 'softmax-ish'"):
        load_model(folder)


def test_check_compatible_refuses_other_params_and_labels():
    clf = _logreg_classifier("x", PdfParams())
    check_compatible(clf, PdfParams(), LABELS[:3])
    with pytest.raises(DatasetError, match=r"other PdfParams than the model \(qdamp 0.06 vs 0.04"):
        check_compatible(clf, PdfParams(qdamp=0.06), LABELS)
    check_compatible(clf, PdfParams(qdamp=0.06), LABELS, allow_physics_mismatch=True)
    with pytest.raises(DatasetError, match="other PdfParams"):  # the grid always has to match
        check_compatible(clf, PdfParams(rmax=20.0), LABELS, allow_physics_mismatch=True)
    with pytest.raises(DatasetError, match=r"label set mismatch.*\(1, 230\)"):
        check_compatible(clf, PdfParams(), (1, *LABELS, 230))


def _save_as_old_pt_folder(clf: NetClassifier, folder):
    """A model folder as pdfsg wrote them before the .npz weights: torch.save state dicts."""
    from pdfsg.artifact import _sha256

    folder = save_model(folder, clf)
    manifest = json.loads((folder / "manifest.json").read_text())
    for i, net in enumerate(clf.networks):
        (folder / f"weights-{i}.npz").unlink()
        path = folder / f"weights-{i}.pt"
        torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, path)
        manifest["weights"][i] = {"file": path.name, "sha256": _sha256(path), "role": f"member {i}"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_old_pt_weights_still_load_and_resave_as_npz(tmp_path):
    clf = _net_classifier("pdfsg-net", PdfParams())
    X = np.random.default_rng(3).random((6, 209)).astype(np.float32)
    old = _save_as_old_pt_folder(clf, tmp_path / "old")
    loaded = load_model(old)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    new = save_model(tmp_path / "new", loaded)
    assert sorted(p.name for p in new.glob("weights-*")) == ["weights-0.npz", "weights-1.npz"]
    with np.load(new / "weights-0.npz", allow_pickle=False) as z:
        state = clf.networks[0].state_dict()
        assert sorted(z.files) == sorted(state)
        for k in z.files:
            assert np.array_equal(z[k], state[k].numpy()), k
    assert np.array_equal(load_model(new).predict_proba(X), clf.predict_proba(X))
    # or in place: the folder keeps its manifest, the weights become .npz
    from pdfsg.artifact import convert_weights

    assert [p.name for p in convert_weights(old)] == ["weights-0.npz", "weights-1.npz"]
    assert not list(old.glob("*.pt"))
    assert [w["file"] for w in read_manifest(old)["weights"]] == ["weights-0.npz", "weights-1.npz"]
    assert np.array_equal(load_model(old).predict_proba(X), clf.predict_proba(X))
    assert convert_weights(old) == []  # nothing left to convert


def test_loaded_network_predicts_without_torch_and_equals_the_torch_engine(tmp_path):
    """A loaded network predicts through NumPy: torch is not imported (checked in a fresh
    interpreter), and the torch modules built from the same arrays agree to 1e-5."""
    import subprocess
    import sys

    clf = _net_classifier("pdfsg-net", PdfParams(rmax=20.0))
    folder = save_model(tmp_path / "m", clf)
    code = (
        "import sys, numpy as np\n"
        "from pdfsg.artifact import load_model\n"
        f"m = load_model({str(folder)!r})\n"
        "p = m.predict_proba(np.random.default_rng(0).random((3, 100)), start=20)\n"
        "assert p.shape == (3, 5) and abs(p.sum() - 3) < 1e-9\n"
        "print(sorted(k for k in ('torch', 'scipy', 'pymatgen') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    loaded = load_model(folder)
    X = np.random.default_rng(4).random((9, 100)).astype(np.float32)
    numpy_p = loaded.predict_proba(X, start=20)
    loaded.engine = "torch"
    torch_p = loaded.predict_proba(X, start=20)
    assert np.abs(numpy_p - torch_p).max() < 1e-5


def test_net_classifier_needs_networks_or_states():
    with pytest.raises(ModelError, match="either networks or states"):
        NetClassifier("pdfsg-net", LABELS, PdfParams(), PdfsgNetConfig(n_classes=5).to_dict())


def _ensemble_folder(tmp_path, members: list, calibration: dict | None = None):
    """An ``ensemble`` model folder over saved member folders (as the recipe writes it)."""
    import json

    folders = [save_model(tmp_path / f"m{i}", m) for i, m in enumerate(members)]
    out = tmp_path / "ens"
    out.mkdir()
    manifest = _ensemble_manifest(out, folders, LABELS, members[0].params)
    if calibration:
        manifest["calibration"] = calibration
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _ensemble_manifest(out, folders, labels, params) -> dict:
    """The manifest of an ``ensemble`` folder ``out`` over member ``folders``."""
    import os

    from pdfsg.artifact import FORMAT, FORMAT_VERSION

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": out.name,
        "kind": "ensemble",
        "config": {},
        "weights": [],
        "members": [os.path.relpath(f, out) for f in folders],
        "labels": list(labels),
        "params": params.to_dict(),
    }


def test_an_ensemble_folder_averages_its_members_and_applies_its_calibration(tmp_path):
    from pdfsg.calibration import apply_temperature
    from pdfsg.models import EnsembleClassifier

    params = PdfParams()
    a, b = _net_classifier("pdfsg-net", params, 1), _logreg_classifier("x", params)
    X = np.random.default_rng(0).random((4, params.npoints)).astype(np.float32)
    mean = (a.predict_proba(X) + b.predict_proba(X)) / 2
    cal = {"modes": {"g_only": {"temperature": 2.0, "conformal_threshold": 0.1}}}
    ens = load_model(_ensemble_folder(tmp_path, [a, b], cal))
    assert isinstance(ens, EnsembleClassifier) and not ens.uses_composition
    np.testing.assert_allclose(ens.predict_proba(X, calibrated=False), mean, atol=1e-6)
    np.testing.assert_allclose(ens.predict_proba(X), apply_temperature(mean, 2.0), atol=1e-6)
    assert ens.calibration(False)["conformal_threshold"] == 0.1
    assert not ens.variable_length  # a logistic regression needs the whole grid


def test_an_ensemble_with_a_missing_member_is_a_one_line_error(tmp_path):
    import shutil

    params = PdfParams()
    folder = _ensemble_folder(tmp_path, [_logreg_classifier("x", params)])
    shutil.rmtree(tmp_path / "m0")
    with pytest.raises(ModelError, match=r"member '\.\./m0' not found"):
        load_model(folder)


def test_calibration_rows_are_named_by_a_rule():
    from pdfsg.calibration import in_share, used_for_calibration

    ids = [f"mp-{i}" for i in range(3000)]
    share = np.mean([in_share(i, 1 / 3, "cal") for i in ids])
    assert 0.3 < share < 0.37
    assert in_share("mp-7#aug2", 0.5, "cal") == in_share("mp-7", 0.5, "cal")
    manifest = {"calibration": {"held_out_test_rows": {"fraction": 1 / 3, "seed": "cal"}}}
    mask = used_for_calibration(manifest, ids)
    assert mask.sum() == sum(in_share(i, 1 / 3, "cal") for i in ids)
    assert not used_for_calibration({}, ids).any()


def test_a_member_of_a_subset_of_groups_only_divides_its_subset(tmp_path):
    """An ensemble of every group with a 45-group member: the subset member shares how the
    probability inside its groups is divided, not how much they get."""
    import json
    import os

    from conftest import make_logreg_model

    wide, narrow = (2, 14, 62, 136, 166, 194, 221, 225, 230), (14, 62, 221, 225)
    big = make_logreg_model(tmp_path / "big", wide, seed=1)
    small = make_logreg_model(tmp_path / "small", narrow, seed=2)
    out = tmp_path / "ens"
    out.mkdir()
    manifest = _ensemble_manifest(out, [big, small], wide, PdfParams())
    (out / "manifest.json").write_text(json.dumps(manifest))
    ens = load_model(out)
    X = np.random.default_rng(3).random((5, PdfParams().npoints)).astype(np.float32)
    p = ens.predict_proba(X, calibrated=False)
    pb, ps = load_model(big).predict_proba(X), load_model(small).predict_proba(X)
    cols = np.array([wide.index(g) for g in narrow])
    outside = np.setdiff1d(np.arange(len(wide)), cols)
    np.testing.assert_allclose(p[:, outside], pb[:, outside], atol=1e-12)
    mass = pb[:, cols].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p[:, cols].sum(axis=1, keepdims=True), mass, atol=1e-12)
    expected = mass * (pb[:, cols] / mass + ps) / 2
    np.testing.assert_allclose(p[:, cols], expected, atol=1e-12)
    # a member with groups the ensemble lacks votes only on the shared ones
    other = make_logreg_model(tmp_path / "other", (14, 62, 221, 225, 229), seed=4)
    manifest["members"] = [os.path.relpath(big, out), os.path.relpath(other, out)]
    (out / "manifest.json").write_text(json.dumps(manifest))
    p2 = load_model(out).predict_proba(X, calibrated=False)
    po = load_model(other).predict_proba(X)[:, :4]
    np.testing.assert_allclose(
        p2[:, cols], mass * (pb[:, cols] / mass + po / po.sum(1, keepdims=True)) / 2, atol=1e-12
    )
    # a member sharing no group is refused
    lone = make_logreg_model(tmp_path / "lone", (1, 3), seed=5)
    manifest["members"] = [os.path.relpath(big, out), os.path.relpath(lone, out)]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="no group in common"):
        load_model(out)
