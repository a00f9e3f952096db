"""The PDF memory: isostructural crystals found across element and lattice changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.params import PdfParams
from pdfsg.pdf_memory import (
    FILENAME,
    TWO_STAGE_FROM,
    PdfMemory,
    build_pdf_memory,
    product,
)

PARAMS = PdfParams()


def _rocksalt(a: float, cation: str, anion: str) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])  # fmt: skip


def _cesium_chloride(a: float) -> Structure:
    return Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _zincblende(a: float) -> Structure:
    return Structure.from_spacegroup("F-43m", Lattice.cubic(a), ["Zn", "S"],
                                     [[0, 0, 0], [0.25, 0.25, 0.25]])  # fmt: skip


@pytest.fixture(scope="module")
def memory() -> PdfMemory:
    """Classes 0 = rocksalt (NaCl), 1 = CsCl type, 2 = zincblende (ZnS)."""
    curves = np.stack(
        [
            pdf.simulate(s, PARAMS)
            for s in (_rocksalt(5.64, "Na", "Cl"), _cesium_chloride(4.12), _zincblende(5.41))
        ]
    )
    return build_pdf_memory(
        curves, np.array([0, 1, 2]), 3, PARAMS.rmin, PARAMS.rstep
    ).with_settings(k=3)


def test_other_elements_and_a_larger_cell_find_their_structure_type(memory):
    # KCl-like rocksalt: other elements, a 6 % larger cell
    query = pdf.simulate(_rocksalt(5.64 * 1.06, "K", "Br"), PARAMS)
    sims, best = memory.neighbours(query)
    assert best[0, 0] == 0 and sims[0, 0] > 0.9
    assert sims[0, 0] - sims[0, 1] > 0.2
    p = memory.proba(query)
    assert p.argmax() == 0 and p[0, 0] > 0.99
    # without the stretch search the same curve matches much worse
    unstretched = memory.with_settings()
    unstretched.scales = (1.0,)
    assert unstretched.neighbours(query)[0][0, 0] < sims[0, 0] - 0.3


def test_a_query_like_nothing_gets_a_flat_vote(memory):
    noise = np.random.default_rng(0).normal(size=(1, memory.npoints))
    p = memory.proba(noise)
    assert p.max() - p.min() < 0.05


def test_product_of_experts_and_abstention(memory):
    query = pdf.simulate(_rocksalt(5.5, "Ag", "Cl"), PARAMS)[None, :]
    flat = np.full((1, 3), 1 / 3)
    combined = memory.combine(flat, query)
    assert combined.argmax() == 0 and combined.sum() == pytest.approx(1.0)
    assert np.allclose(product(flat, memory.proba(query), 0.0), flat)
    # a curve covering under 24 compared points: the model's answer unchanged
    short = query[:, 100:120]
    assert memory.window(100, 20) is None
    assert memory.combine(flat, short, start=100) is flat


def test_a_short_query_is_compared_over_what_it_covers(memory):
    full = pdf.simulate(_rocksalt(5.7, "Na", "Br"), PARAMS)
    start, length = 10, 100  # r from 2.9 A, 100 points
    idx = memory.window(start, length)
    r = memory.r
    assert r[idx[0]] >= r[start] / 0.9 - 1e-9 and r[idx[-1]] <= r[start + length - 1] / 1.1
    sims, best = memory.neighbours(full[start : start + length], start=start)
    assert best[0, 0] == 0 and sims[0, 0] > 0.9


def test_a_nanoparticle_is_compared_with_the_curves_as_such_a_particle_shows_them(memory):
    from pdfsg.augment import particle_envelope

    # a 2.5 nm NaCl particle: its G(r) dies out by 25 Å
    query = pdf.simulate(_rocksalt(5.64, "Na", "Cl"), PARAMS) * particle_envelope(
        PARAMS.r_grid(), 25.0
    )
    bulk_sims, bulk_best = memory.neighbours(query)
    sims, best = memory.neighbours(query, diameters=np.array([2.5]))
    assert best[0, 0] == bulk_best[0, 0] == 0
    assert sims[0, 0] > 0.98 > bulk_sims[0, 0] + 0.05  # like with like
    # NaN means bulk: the same answer as without diameters, row by row in a mixed batch
    both = np.stack([query, query])
    mixed = memory.neighbours(both, diameters=np.array([np.nan, 2.5]))
    assert mixed[0][0] == pytest.approx(bulk_sims[0]) and mixed[0][1] == pytest.approx(sims[0])
    p_bulk = memory.combine(np.full((2, 3), 1 / 3), both)
    p_sized = memory.combine(np.full((2, 3), 1 / 3), both, diameters=np.array([np.nan, 2.5]))
    assert p_sized[0] == pytest.approx(p_bulk[0]) and p_sized[1, 0] > p_bulk[1, 0]


def test_save_and_load_round_trip_and_a_shorter_grid(memory, tmp_path: Path):
    memory.with_settings(tau=0.03, power=0.7).save(tmp_path)
    loaded = PdfMemory.load(tmp_path / FILENAME)
    assert loaded.curves.dtype == np.uint8 and loaded.curves.shape == memory.curves.shape
    assert (loaded.tau, loaded.power, loaded.k) == (0.03, 0.7, 3)
    query = pdf.simulate(_zincblende(5.6), PARAMS)
    assert np.allclose(loaded.proba(query), memory.with_settings(tau=0.03).proba(query))
    short = PdfMemory.load(tmp_path / FILENAME, npoints=120)
    assert short.npoints == 120 and short.proba(query[:120]).argmax() == 2
    with pytest.raises(ValueError, match="holds 209 grid points"):
        PdfMemory.load(tmp_path / FILENAME, npoints=400)


def test_classes_outside_the_model_are_dropped_and_bad_classes_rejected():
    curves = np.random.default_rng(1).random((4, 50))
    mem = build_pdf_memory(curves, np.array([0, -1, 1, 1]), 2, 1.5, 0.1)
    assert mem.classes.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="classes"):
        PdfMemory(curves.astype(np.uint8), np.array([0, 1, 2, 5]), 3, 1.5, 0.1)


def test_two_stage_search_agrees_with_brute_force_correlations():
    rng = np.random.default_rng(3)
    base = pdf.simulate(_rocksalt(5.64, "Na", "Cl"), PARAMS)
    others = [pdf.simulate(_zincblende(a), PARAMS) for a in (5.0, 5.4, 5.8)]
    # 60 curves: noisy copies of three zincblendes and one rocksalt at an index of its own
    curves = np.stack([o + rng.normal(0, 0.3, o.size) for o in others for _ in range(20)])
    curves = np.insert(curves, 37, base, axis=0)
    classes = np.array([1] * 37 + [0] + [1] * 23)
    mem = build_pdf_memory(curves, classes, 2, PARAMS.rmin, PARAMS.rstep).with_settings(k=5)
    query = pdf.simulate(_rocksalt(5.9, "K", "Cl"), PARAMS)
    exact = mem.with_settings(search_dims=0).neighbours(query)
    # a series of queries (the two-stage search starts at TWO_STAGE_FROM of them)
    series = np.tile(query, (TWO_STAGE_FROM, 1))
    staged = mem.with_settings(search_dims=8, shortlist=6).neighbours(series)
    assert np.array_equal(staged[1][0], staged[1][-1])
    assert exact[1][0, 0] == staged[1][0, 0] == 37
    assert np.allclose(exact[0][0, 0], staged[0][0, 0], atol=1e-5)
    # the similarity is the best Pearson correlation over the stretches, on the window
    idx = mem.window(0, mem.npoints)
    stored = mem.curves[37, idx].astype(float)
    best = max(
        np.corrcoef(np.interp(mem.r[idx] * s, mem.r, query), stored)[0, 1] for s in mem.scales
    )
    assert exact[0][0, 0] == pytest.approx(best, abs=1e-4)


def test_the_shipped_family_votes_with_its_pdf_memory():
    """The default family's models (r <= 30 and r <= 20 A) share one memory file; a measured-
    like rock-salt curve (fine grid from ~0, Qmax 26, Qdamp 0.03) of a compound made up here
    (KBr-like cell) finds rock-salt training curves, and the memory moves the answer."""
    from pdfsg.predict import Predictor
    from pdfsg.preprocess import prepare_input

    predictor = Predictor.load()
    memories = [getattr(m, "pdf_memory", None) for m in predictor.models]
    if any(m is None for m in memories):
        pytest.skip("the shipped family has no PDF memory")
    files = {m.manifest["pdf_memory"]["file"] for m in predictor.models}
    assert len({(Path(m.manifest["_folder"]) / f).resolve() for m in predictor.models
                for f in [m.manifest["pdf_memory"]["file"]]}) == 1, files  # fmt: skip
    measured = PdfParams(rmin=0.01, rmax=30.0, rstep=0.01, qmin=0.8, qmax=26.0, qdamp=0.03,
                         uiso=0.005)  # fmt: skip
    g = pdf.simulate(_rocksalt(6.6, "K", "Br"), measured)
    model = predictor.models[0]
    x = prepare_input(measured.r_grid(), g, model.params)
    sims, best = model.pdf_memory.neighbours(x.x, x.start_index)
    labels = np.asarray(model.labels)
    assert sims[0, 0] > 0.9
    assert (labels[model.pdf_memory.classes[best[0, :10]]] == 225).mean() >= 0.5
    with_memory = model.predict_proba(x.x[None], x.start_index, calibrated=False)
    without = model.predict_proba(x.x[None], x.start_index, calibrated=False, memory=False)
    assert labels[with_memory.argmax()] == 225
    assert not np.allclose(with_memory, without)


def _bump_dataset(path: Path, labels=(2, 14, 62), per_class: int = 30) -> Path:
    """Curves of class-dependent Gaussian bumps (a quarter of them test rows), formula NaCl."""
    from pdfsg.datasets import write_dataset_file

    r = PARAMS.r_grid()
    centres = np.random.default_rng(7).uniform(3, 28, size=(len(labels), 5))
    rng = np.random.default_rng(0)
    G, groups, split = [], [], []
    for c, label in enumerate(labels):
        for i in range(per_class):
            g = sum(
                np.exp(-0.5 * ((r - mu) / 0.2) ** 2) for mu in centres[c] + rng.normal(0, 0.05, 5)
            )
            G.append(g + 0.02 * rng.normal(size=r.size))
            groups.append(label)
            split.append(1 if i < per_class // 4 else 0)
    order = np.argsort(split, kind="stable")
    return write_dataset_file(
        path,
        ids=[f"bump-{i}" for i in range(len(groups))],
        formula=["NaCl"] * len(groups),
        space_group=np.asarray(groups)[order],
        G=np.asarray(G, dtype=np.float32)[order],
        split=np.asarray(split, dtype=np.int8)[order],
        params=PARAMS,
        manifest={"label_set": "synthetic", "labels": list(labels), "source": {"kind": "bumps"}},
    )


def test_the_recipe_step_gives_an_ensemble_a_tuned_memory_and_recalibrates(tmp_path: Path):
    import sys

    from conftest import make_logreg_model

    from pdfsg.artifact import load_model
    from pdfsg.datasets import read_dataset
    from pdfsg.preprocess import normalize_minmax

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        from shipped_model import main
    finally:
        sys.path.pop(0)
    data = _bump_dataset(tmp_path / "bumps.h5")
    member = make_logreg_model(tmp_path / "member", (2, 14, 62))
    out = tmp_path / "ens"
    main(["ensemble", str(member), "--out", str(out), "--dataset", str(data)])
    with pytest.raises(SystemExit, match="give --pool datasets or --share"):
        main(["pdf-memory", str(out), "--dataset", str(data)])
    main(["pdf-memory", str(out), "--pool", str(data), "--dataset", str(data)])

    model = load_model(out)
    entry = model.manifest["pdf_memory"]
    assert entry["file"] == FILENAME and entry["curves"] == 69  # the training rows
    assert entry["pool"] == [{"file": str(data), "rows": 69, "kept": 69}]
    assert model.manifest["calibration"]["modes"]["g_only"]["temperature"] > 0
    ds = read_dataset(data)
    test = np.flatnonzero(ds.split == 1)
    X = normalize_minmax(ds.G[test]).astype(np.float32)
    y = ds.class_index()[test]
    # the random member alone is near chance; its memory finds each bump pattern's class
    alone = model.predict_proba(X, memory=False).argmax(axis=1)
    assert (model.predict_proba(X).argmax(axis=1) == y).mean() == 1.0
    assert (alone == y).mean() < 0.7

    # another ensemble of the same grid shares the file instead of a copy
    other = tmp_path / "ens2"
    main(["ensemble", str(member), "--out", str(other), "--dataset", str(data)])
    main(["pdf-memory", str(other), "--share", str(out), "--dataset", str(data)])
    shared = load_model(other)
    assert not (other / FILENAME).exists()
    assert shared.manifest["pdf_memory"]["file"] == f"../ens/{FILENAME}"
    assert (shared.predict_proba(X).argmax(axis=1) == y).mean() == 1.0


def test_formula_types_anonymise_the_stoichiometry_and_ignore_dopants():
    from pdfsg.composition_vector import encode, encode_formulas
    from pdfsg.pdf_memory import formula_type

    formulas = ["SrTiO3", "BaZrO3", "Fe2O3", "Fe3O4", "Pt", "NaCl"]
    types = [formula_type(c) for c in encode_formulas(formulas)]
    assert types == ["3:1:1", "3:1:1", "3:2", "4:3", "1", "1:1"]
    assert formula_type(encode({"Na": 0.98, "K": 0.02, "Cl": 1.0})) == "1:1"  # 1 % dopant
    assert formula_type(encode(None)) is None


def test_the_type_vote_finds_the_siblings_of_the_query_stoichiometry(memory, tmp_path: Path):
    from pdfsg.composition_vector import encode_formulas

    # a rock salt's curve; among the AB curves the memory holds the rock salt and CsCl,
    # among A curves nothing: the type vote picks rock salt, and abstains for an element
    curves = memory.curves.astype(np.float32)
    typed = build_pdf_memory(curves, memory.classes, 3, PARAMS.rmin, PARAMS.rstep,
                             encode_formulas(["NaCl", "CsCl", "ZnS"])).with_settings(
        type_k=2, type_power=1.0)  # fmt: skip
    assert typed.type_names == ("1:1",) and typed.types.tolist() == [0, 0, 0]
    query = pdf.simulate(_rocksalt(5.9, "K", "Cl"), PARAMS)[None, :]
    sims, best = typed.type_neighbours(query, encode_formulas(["KCl"]))
    assert best[0, 0] == 0 and sims[0, 0] > 0.85 and sims[0, 1] < sims[0, 0] - 0.2
    assert typed.type_vote(sims, best).argmax() == 0
    sims, best = typed.type_neighbours(query, encode_formulas(["K"]))
    assert (best == -1).all()
    flat = typed.type_vote(sims, best)
    assert np.allclose(flat, 1 / 3)
    # the product: with the composition the type vote joins the PDF vote; saved and loaded
    both = typed.combine(np.full((1, 3), 1 / 3), query, comp=encode_formulas(["KCl"]))
    assert both.argmax() == 0
    typed.save(tmp_path)
    loaded = PdfMemory.load(tmp_path / FILENAME)
    assert loaded.type_names == ("1:1",) and loaded.type_power == 1.0


def test_a_nominal_composition_takes_the_nearest_formula_type(memory):
    from pdfsg.composition_vector import encode_formulas

    curves = memory.curves.astype(np.float32)
    typed = build_pdf_memory(curves, memory.classes, 3, PARAMS.rmin, PARAMS.rstep,
                             encode_formulas(["IrTe2", "NaCl", "CuIr2S4"]))  # fmt: skip
    names = typed.type_names
    queries = ["Ir0.8Rh0.2Te2", "Na0.97K0.03Cl", "CuIr1.76Cr0.24S4", "Fe0.95O", "Pt", "Fe3O4"]
    codes = typed._type_codes(encode_formulas(queries))
    assert [names[c] if c >= 0 else None for c in codes] == [
        "2:1", "1:1", "4:2:1", "1:1", None, None
    ]  # fmt: skip
