"""Ranking restricted to a label set (``--label-set paper45``): renormalised probabilities,
levels and prediction set of the restricted groups, errors; with the shipped 45-group model
and with a 50-group model made from arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_logreg_model

from pdfsg.cli import main
from pdfsg.errors import ParamsError
from pdfsg.hierarchy import level_probabilities
from pdfsg.predict import Predictor, example_files
from pdfsg.spacegroups import label_set

PAPER45 = label_set("paper45")
#: five groups outside the paper's 45; the model puts most of its mass on them
EXTRA = (1, 3, 5, 146, 229)
LABELS50 = tuple(sorted(PAPER45 + EXTRA))


@pytest.fixture(scope="module")
def model50(tmp_path_factory):
    intercept = [3.0 if sg in EXTRA else 0.0 for sg in LABELS50]
    return make_logreg_model(tmp_path_factory.mktemp("m50") / "groups50", LABELS50,
                             intercept=intercept)  # fmt: skip


@pytest.fixture(scope="module")
def p50(model50) -> Predictor:
    return Predictor.load(model50)


@pytest.fixture(scope="module")
def example():
    return example_files()[0]


def test_restriction_renormalises_and_drops_the_other_groups(p50, example):
    full = p50.predict_file(example, top=0)
    assert full.predictions[0].space_group in EXTRA  # the unrestricted answer is outside
    assert full.label_set == {"name": "all", "n_groups": 50, "model_groups": 50}
    res = p50.predict_file(example, top=0, label_set="paper45")
    assert res.label_set == {"name": "paper45", "n_groups": 45, "model_groups": 50}
    assert {p.space_group for p in res.predictions} == set(PAPER45)
    assert res.labels == PAPER45
    # the restricted probabilities are the full ones over the 45 groups, renormalised
    keep = np.isin(np.asarray(full.labels), PAPER45)
    expected = full.probabilities[keep] / full.probabilities[keep].sum()
    assert np.allclose(res.probabilities, expected, rtol=1e-9, atol=1e-12)
    assert sum(p.probability for p in res.predictions) == pytest.approx(1.0)
    order = [sg for _, sg in sorted(zip(-expected, PAPER45, strict=True))]
    assert [p.space_group for p in res.predictions] == order
    # levels are sums over the restricted groups; the prediction set lies inside them
    for level, got in (
        ("crystal_system", res.crystal_systems),
        ("bravais_lattice", res.bravais_lattices),
        ("laue_class", res.laue_classes),
    ):
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)
        assert got == level_probabilities(PAPER45, expected, level)
    assert set(res.prediction_set["space_groups"]) <= set(PAPER45)
    assert res.prediction_set["space_groups"][0] == res.predictions[0].space_group
    assert res.predictions[0].symbol in res.uncertainty
    # triclinic keeps only P-1 (2) of the model's P1 (1) and P-1
    p_tri = dict(zip(full.labels, full.probabilities, strict=True))
    assert res.crystal_systems["triclinic"] == pytest.approx(
        p_tri[2] / full.probabilities[keep].sum(), abs=1e-6
    )
    # "all" is no restriction; the same answers through predict and predict_many
    same = p50.predict_file(example, top=0, label_set="all")
    assert same.to_dict() == full.to_dict()
    (many,) = p50.predict_many([example], top=0, label_set="paper45")
    assert many.to_dict() == res.to_dict()


def test_bad_label_sets_are_params_errors(p50, tmp_path):
    with pytest.raises(ParamsError, match="unknown label set 'paper46'") as info:
        p50.predict_file(example_files()[0], label_set="paper46")
    assert info.value.field == "label_set"
    only_other = Predictor.load(make_logreg_model(tmp_path / "m3", EXTRA[:3]))
    with pytest.raises(ParamsError, match="paper45 holds none of the model's 3 space groups"):
        only_other.predict(np.arange(1.0, 31.0, 0.01), np.zeros(3000), label_set="paper45")
    with pytest.raises(ParamsError, match="label_set"):
        p50.predict_many([example_files()[0]], label_set="P1")


def test_cli_label_set_in_every_format_and_its_errors(model50, example, tmp_path, capsys):
    base = ["predict", str(example), "--model", str(model50)]
    assert main([*base, "--label-set", "paper45", "--format", "json", "--top", "3"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["label_set"] == {"name": "paper45", "n_groups": 45, "model_groups": 50}
    assert all(p["space_group"] in PAPER45 for p in doc["predictions"])
    assert main([*base, "--label-set", "paper45", "--format", "csv", "--top", "2"]) == 0
    rows = capsys.readouterr().out.splitlines()
    col = rows[0].split(",").index("label_set")
    assert [r.split(",")[col] for r in rows[1:]] == ["paper45", "paper45"]
    assert main([*base, "--label-set", "paper45"]) == 0
    table = capsys.readouterr().out
    assert "label set: paper45 (45 of the model's 50 groups" in table
    assert main(base) == 0
    assert "label set:" not in capsys.readouterr().out
    # an unknown name, and a set the model does not overlap: one line naming the option
    assert main([*base, "--label-set", "paper-45"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label-set: unknown label set 'paper-45'" in err
    m3 = make_logreg_model(tmp_path / "m3", EXTRA[:3])
    assert main(["predict", str(example), "--model", str(m3), "--label-set", "paper45"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label-set: paper45 holds none" in err


def test_shipped_45_group_model_is_unchanged_by_paper45():
    p = Predictor.load("pdfsg-v3")
    assert set(p.labels) == set(PAPER45)
    for path in example_files():
        full = p.predict_file(path, top=0)
        res = p.predict_file(path, top=0, label_set="paper45")
        assert [g.space_group for g in res.predictions] == [g.space_group for g in full.predictions]
        assert np.allclose(res.probabilities, full.probabilities, rtol=1e-12, atol=1e-15)
        assert res.prediction_set == full.prediction_set
        assert res.uncertainty == full.uncertainty
        assert res.crystal_systems == full.crystal_systems


def test_web_api_takes_the_label_set(p50, example):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from test_web import make_client

    client = make_client(p50)
    info = client.get("/api/info").json()
    assert [s["name"] for s in info["label_sets"]] == ["all", "paper45"]
    assert info["label_sets"][1]["n_groups"] == 45
    files = [("files", ("ex.gr", example.read_bytes(), "text/plain"))]
    r = client.post("/api/predict?top=50&label_set=paper45", files=files)
    assert r.status_code == 200
    (entry,) = r.json()
    assert entry["label_set"] == {"name": "paper45", "n_groups": 45, "model_groups": 50}
    assert len(entry["predictions"]) == 45
    assert {p["space_group"] for p in entry["predictions"]} == set(PAPER45)
    assert sum(p["probability"] for p in entry["predictions"]) == pytest.approx(1.0)
    direct = p50.predict_file(example, top=50, label_set="paper45").to_dict()
    assert entry["predictions"] == direct["predictions"]
    (entry,) = client.post("/api/predict", files=files).json()
    assert entry["label_set"]["name"] == "all" and entry["predictions"][0]["space_group"] in EXTRA
    r = client.post("/api/predict?label_set=paper46", files=files)
    assert r.status_code == 422 and "unknown label set 'paper46'" in r.json()["detail"]
    schema = client.get("/openapi.json").json()
    params = schema["paths"]["/api/predict"]["post"]["parameters"]
    assert "label_set" in {p["name"] for p in params}
