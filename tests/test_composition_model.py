"""The composition-aware network: the composition vector, nominal-composition augmentation,
and a network that learns from the composition when G(r) carries no information."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdfsg.composition_vector import (
    COMPOSITION_DIM,
    ELEMENTS,
    N_ELEMENTS,
    encode,
    period_and_group,
    perturb,
)


def test_periodic_table_positions():
    z = {s: i + 1 for i, s in enumerate(ELEMENTS)}
    assert period_and_group(z["H"]) == (1, 1)
    assert period_and_group(z["He"]) == (1, 18)
    assert period_and_group(z["O"]) == (2, 16)
    assert period_and_group(z["Cl"]) == (3, 17)
    assert period_and_group(z["Fe"]) == (4, 8)
    assert period_and_group(z["Ag"]) == (5, 11)
    assert period_and_group(z["La"]) == (6, 19)  # f block
    assert period_and_group(z["Hf"]) == (6, 4)
    assert period_and_group(z["Pt"]) == (6, 10)
    assert period_and_group(z["Ra"]) == (7, 2)
    assert len(ELEMENTS) == N_ELEMENTS == 103


def test_encode_blocks_and_unknown():
    assert COMPOSITION_DIM == 146
    assert not encode(None).any()
    v = encode({"Fe": 2, "O": 3})
    fe, o = ELEMENTS.index("Fe"), ELEMENTS.index("O")
    assert v[fe] == pytest.approx(0.4) and v[o] == pytest.approx(0.6)
    assert v[:N_ELEMENTS].sum() == pytest.approx(1.0)
    assert v[-1] == 1.0  # known
    # amounts on any scale give the same vector; the anonymised block is AB-independent
    np.testing.assert_allclose(encode({"Fe": 0.4, "O": 0.6}), v, atol=1e-7)
    w = encode({"Cr": 2, "S": 3})
    np.testing.assert_allclose(v[-9:], w[-9:], atol=1e-7)  # same stoichiometry A2B3
    with pytest.raises(ValueError, match="Xx"):
        encode({"Xx": 1})
    with pytest.raises(ValueError, match="> 0"):
        encode({"Ni": 0})


def test_perturb_keeps_the_parent_recognisable():
    rng = np.random.default_rng(0)
    parent = {"Ir": 1.0, "Te": 2.0}
    seen_sub = seen_dopant = 0
    for _ in range(400):
        c = perturb(parent, rng)
        assert set(parent) <= set(c)
        total = sum(c.values())
        extra = set(c) - set(parent)
        seen_sub += any(c[e] / total > 0.03 for e in extra)
        seen_dopant += any(c[e] / total <= 0.03 for e in extra)
        assert c["Te"] / total > 0.42 and c["Ir"] / total > 0.2  # at most 30 % swapped out
    assert seen_sub > 20 and seen_dopant > 20
    # the vector of a doped compound stays closer to its parent than to another compound
    doped = encode({"Ir": 0.8, "Rh": 0.2, "Te": 2})
    assert np.linalg.norm(doped - encode(parent)) < np.linalg.norm(
        doped - encode({"Pt": 1, "Te": 2})
    )


def test_network_learns_from_composition(tmp_path: Path):
    """G(r) is one curve for every class (plus 1 % noise); only the formula tells the classes
    apart."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from pdfsg.datasets import read_dataset, write_dataset_file
    from pdfsg.params import PdfParams
    from pdfsg.train import train

    params = PdfParams()
    labels = (14, 62, 225)
    formulas = {14: ["LiFePO4", "NaMnPO4"], 62: ["CaTiO3", "SrZrO3"], 225: ["NaCl", "KBr"]}
    rng = np.random.default_rng(0)
    ids, form, sg, split, G = [], [], [], [], []
    for lab in labels:
        for i in range(60):
            ids.append(f"c{lab}-{i}")
            form.append(formulas[lab][i % 2])
            sg.append(lab)
            split.append(1 if i < 12 else 0)
            G.append(np.sin(params.r_grid()) + 0.01 * rng.normal(size=params.npoints))
    order = np.argsort(split, kind="stable")
    path = write_dataset_file(
        tmp_path / "comp.h5",
        ids=[ids[i] for i in order],
        formula=[form[i] for i in order],
        space_group=np.asarray(sg)[order],
        G=np.asarray(G, dtype=np.float32)[order],
        split=np.asarray(split, dtype=np.int8)[order],
        params=params,
        manifest={"label_set": "test", "labels": list(labels)},
    )
    result = train(
        path,
        "pdfsg-net-comp",
        tmp_path / "run",
        epochs=12,
        seed=0,
        device="cpu",
        train_overrides={"warmup_epochs": 0.5, "batch_size": 32},
    )
    assert result.metrics["top_k_accuracy"]["1"] > 0.9  # the test rows with their formulas
    ds = read_dataset(path)
    net = result.classifier.networks[0].eval()
    te = ds.split == 1
    y = ds.class_index()[te]
    with torch.no_grad():
        x = torch.from_numpy(ds.X[te])
        blind = net(x).argmax(1).numpy()
        doped = torch.from_numpy(
            np.stack([encode({"Na": 0.97, "Li": 0.03, "Cl": 1})] * int(te.sum()))
        )
        as_nacl = net(x, 0, doped).argmax(1).numpy()
    assert (blind == y).mean() < 0.7  # without the composition: no better than a guess
    assert (np.asarray(labels)[as_nacl] == 225).mean() > 0.9  # a doped NaCl reads as NaCl


def test_composition_memory_votes_by_similar_compositions(tmp_path: Path):
    from pdfsg.composition_memory import CompositionMemory, build_memory

    comps = [{"Na": 1, "Cl": 1}, {"K": 1, "Br": 1}, {"Na": 1, "Cl": 1}, {"Ca": 1, "Ti": 1, "O": 3}]
    mem = build_memory(comps, np.array([2, 2, 2, 1]), n_classes=3)
    assert mem.classes.size == 3  # the repeated NaCl entry is kept once
    p = mem.with_settings(k=2, tau=0.05).proba(encode({"Na": 0.97, "K": 0.03, "Cl": 1})[None])
    assert p.argmax() == 2 and p[0, 2] > 0.7  # rock-salt neighbours (a floor of 1/6 each)
    p = mem.with_settings(k=2).proba(encode({"Sr": 1, "Ti": 1, "O": 3})[None])
    assert p.argmax() == 1  # a perovskite's neighbour
    # the product of experts: a flat network answer follows the memory; power 0 ignores it
    flat = np.full((1, 3), 1 / 3)
    comp = encode({"Na": 1, "Cl": 1})[None]
    assert mem.combine(flat, comp).argmax() == 2
    np.testing.assert_allclose(mem.with_settings(power=0.0).combine(flat, comp), flat)
    back = CompositionMemory.load(mem.save(tmp_path))
    np.testing.assert_allclose(back.proba(comp), mem.proba(comp), atol=1e-3)
    assert (back.k, back.power) == (mem.k, mem.power)
