from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import pdfsg.datasets as ds
from pdfsg.cli import main
from pdfsg.datasets import (
    build_dataset,
    parts_dir,
    read_dataset,
    read_manifest,
    stratified_split,
    write_dataset_file,
)
from pdfsg.errors import DatasetError, ParamsError, StructureError
from pdfsg.params import PdfParams
from pdfsg.pdf import simulate
from pdfsg.preprocess import normalize_minmax
from pdfsg.sources import StructureRecord, iter_records
from pdfsg.structures import parse_structure

DATA = Path(__file__).parent / "data" / "structures"
CSV = DATA / "textbook.csv"
CIFS = DATA / "cifs"
SYNC = {"scheduler": "synchronous"}


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _same_file(a: Path, b: Path) -> None:
    da, db = read_dataset(a), read_dataset(b)
    for key in ("X", "G", "y", "ids", "formula", "split", "r"):
        np.testing.assert_array_equal(getattr(da, key), getattr(db, key))
    ma, mb = dict(da.manifest), dict(db.manifest)
    ma.pop("created"), mb.pop("created")
    assert ma == mb


@pytest.fixture(scope="module")
def textbook(tmp_path_factory) -> tuple[Path, ds.DatasetSummary]:
    out = tmp_path_factory.mktemp("tb") / "tb.h5"
    summary = build_dataset(CSV, out, chunk_size=3, **SYNC)
    return out, summary


# --------------------------------------------------------------------------- build


def test_build_contents_and_manifest(textbook):
    out, summary = textbook
    d = read_dataset(out)
    assert summary.complete and summary.path == out
    assert sorted(d.ids) == sorted(["tb-Ni", "tb-NaCl", "tb-Si", "tb-CsCl", "tb-TiO2", "tb-ZnO"])
    by_id = dict(zip(d.ids, d.y, strict=True))
    assert by_id == {
        "tb-Ni": 225,
        "tb-NaCl": 225,
        "tb-Si": 227,
        "tb-CsCl": 221,
        "tb-TiO2": 136,
        "tb-ZnO": 186,
    }
    assert dict(zip(d.ids, d.formula, strict=True))["tb-TiO2"] == "TiO2"
    assert d.G.dtype == np.float32 and d.X.dtype == np.float32 and d.y.dtype == np.int16
    assert d.G.shape == (6, PdfParams().npoints)
    np.testing.assert_allclose(d.r, PdfParams().r_grid())
    # G is the engine's curve, X its min-max normalisation (paper eq. 4)
    ni = next(r for r in iter_records(CSV) if r.id == "tb-Ni")
    g_ni = simulate(parse_structure(ni.cif, "ni"), PdfParams(), "fast")
    row = list(d.ids).index("tb-Ni")
    np.testing.assert_allclose(d.G[row], g_ni, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.X[row], normalize_minmax(g_ni), atol=1e-6)
    assert d.X.min() == 0 and d.X.max() == 1
    m = d.manifest
    assert m["format"] == "pdfsg-dataset" and m["format_version"] == 1
    assert m["engine"] == "fast" and m["label_set"] == "paper45" and len(m["labels"]) == 45
    assert d.labels == tuple(m["labels"]) and d.params == PdfParams()
    assert m["symprec"] == 0.1 and m["source"]["path"].endswith("textbook.csv")
    assert len(m["source"]["sha256"]) == 64
    assert m["counts"] == {"136": 1, "186": 1, "221": 1, "225": 2, "227": 1}
    assert m["n_read"] == 10 and m["n_skipped"] == 3 and m["n_duplicates"] == 1
    assert m["skip_reasons"] == {"not_cif": 1, "partial_occupancy": 1, "outside_label_set": 1}
    assert m["split"]["seed"] == 0 and m["split"]["test_fraction"] == 0.2
    assert m["split"]["method"] == "stratified by space group"
    assert m["code_version"].startswith("0.") and m["created"]
    assert not parts_dir(out).exists()


def test_skip_log_and_duplicates_log(textbook):
    out, summary = textbook
    rows = _read_csv(summary.skipped_log)
    assert rows[0] == ["id", "reason", "detail"]
    assert {r[0]: r[1] for r in rows[1:]} == {
        "tb-W": "outside_label_set",
        "tb-bad": "not_cif",
        "tb-partial": "partial_occupancy",
    }
    assert summary.skipped_log == out.with_name("tb.skipped.csv")
    assert _read_csv(summary.duplicates_log) == [
        ["id", "duplicate_of"],
        ["tb-NaCl-copy", "tb-NaCl"],
    ]


def test_split_is_stratified_and_train_test_are_views(textbook):
    d = read_dataset(textbook[0])
    train, test = d.train(), d.test()
    assert len(train) + len(test) == len(d)
    assert list(test.y) == [225]  # the only group with 2 members gives one test row
    assert np.shares_memory(train.X, d.X) and np.shares_memory(test.G, d.G)
    assert (d.split[: len(train)] == 0).all()
    np.testing.assert_array_equal(d.class_index(), [d.labels.index(v) for v in d.y])


def test_no_dedupe_keeps_the_copy(tmp_path):
    s = build_dataset(CSV, tmp_path / "a.h5", dedupe=False, test_fraction=0.0, **SYNC)
    d = read_dataset(s.path)
    assert "tb-NaCl-copy" in d.ids and s.n_duplicates == 0 and (d.split == 0).all()


def test_folder_source_skip_reasons_and_all230(tmp_path):
    s = build_dataset(CIFS, tmp_path / "c.h5", label_set="all230", **SYNC)
    assert s.skip_reasons == {
        "not_cif": 1,
        "no_symmetry": 1,
        "partial_occupancy": 1,
        "no_atoms": 1,
    }
    d = read_dataset(s.path)
    assert sorted(d.ids) == ["NaCl_symmetrized", "Ni"] and d.labels == tuple(range(1, 231))


def test_generator_source_with_given_labels(tmp_path):
    def gen():
        for i, a in enumerate((3.5, 3.6, 3.7)):
            s = Structure(Lattice.cubic(a), ["Cu"], [[0, 0, 0]])
            yield StructureRecord(f"gen-{i}", structure=s, space_group=221)

    s = build_dataset(gen(), tmp_path / "g.h5", dedupe=False, **SYNC)
    d = read_dataset(s.path)
    assert list(d.y) == [221] * 3 and s.n_read == 3
    assert d.manifest["source"]["description"].startswith("iterable")


def test_limit_and_bad_options(tmp_path):
    s = build_dataset(CSV, tmp_path / "l.h5", limit=2, **SYNC)
    assert s.n_read == 2 and s.n_rows == 2
    with pytest.raises(ParamsError, match="label set"):
        build_dataset(CSV, tmp_path / "x.h5", label_set="paper46", **SYNC)
    with pytest.raises(ParamsError, match="engine"):
        build_dataset(CSV, tmp_path / "x.h5", engine="slow", **SYNC)
    with pytest.raises(ParamsError, match="test_fraction"):
        build_dataset(CSV, tmp_path / "x.h5", test_fraction=1.0, **SYNC)


def test_bad_source_leaves_no_work_folder_and_the_corrected_build_runs(tmp_path):
    out = tmp_path / "s.h5"
    with pytest.raises(ParamsError, match="volume must be element, group or bonds"):
        build_dataset("synthetic:2,seed=1,volume=nope", out, **SYNC)
    with pytest.raises(StructureError, match="no such file"):
        build_dataset(tmp_path / "missing.csv", out, **SYNC)
    assert not parts_dir(out).exists()  # so the corrected command needs no --restart
    s = build_dataset("synthetic:2,seed=1", out, **SYNC)
    assert s.n_read == 2 and out.exists()
    assert main(["dataset", "build", "synthetic:2,scatter=wide", "-o", str(tmp_path / "c.h5")]) == 2
    assert not parts_dir(tmp_path / "c.h5").exists()


def test_local_dask_cluster(tmp_path, textbook):
    s = build_dataset(CSV, tmp_path / "d.h5", chunk_size=3, n_workers=1)
    assert s.n_chunks == 4 and s.n_chunks_computed == 4
    _same_file(textbook[0], s.path)


# --------------------------------------------------------------------------- resume


@pytest.fixture()
def counting(monkeypatch):
    calls: list[int] = []
    original = ds.process_chunk

    def wrapped(index, *args):
        calls.append(index)
        return original(index, *args)

    monkeypatch.setattr(ds, "process_chunk", wrapped)
    return calls


def test_interrupted_build_resumes_without_recomputing(tmp_path, textbook, counting):
    out = tmp_path / "r.h5"
    progress: list[tuple[int, int | None]] = []
    first = build_dataset(CSV, out, chunk_size=3, max_chunks=2, **SYNC)
    assert not first.complete and first.path is None and not out.exists()
    assert sorted(p.name for p in parts_dir(out).glob("chunk-*")) == [
        "chunk-00000.npz",
        "chunk-00001.npz",
    ]
    assert counting == [0, 1]
    # a kill during a write leaves at most a temporary file, which is ignored
    (parts_dir(out) / ".chunk-00002.npz.tmp-1.npz").write_bytes(b"partial")
    second = build_dataset(
        CSV, out, chunk_size=3, progress=lambda d, t: progress.append((d, t)), **SYNC
    )
    assert counting == [0, 1, 2, 3]  # chunks 0 and 1 were not recomputed
    assert (second.n_chunks_resumed, second.n_chunks_computed) == (2, 2)
    assert progress[-1] == (10, 10) and [p[0] for p in progress] == [3, 6, 9, 10]
    _same_file(textbook[0], out)
    assert not parts_dir(out).exists()


def test_lost_output_and_part_are_rebuilt_from_kept_parts(tmp_path, textbook, counting):
    out = tmp_path / "k.h5"
    build_dataset(CSV, out, chunk_size=3, keep_parts=True, **SYNC)
    assert len(counting) == 4
    out.unlink()
    (parts_dir(out) / "chunk-00002.npz").unlink()
    again = build_dataset(CSV, out, chunk_size=3, keep_parts=True, **SYNC)
    assert counting[4:] == [2] and again.n_chunks_resumed == 3
    _same_file(textbook[0], out)
    # with every part there, dedupe/split options can change without recomputing
    other = build_dataset(CSV, out, chunk_size=3, dedupe=False, seed=5, **SYNC)
    assert len(counting) == 5 and other.n_rows == 7


def test_resume_with_other_arguments_needs_restart(tmp_path, counting):
    out = tmp_path / "m.h5"
    build_dataset(CSV, out, chunk_size=3, max_chunks=1, **SYNC)
    with pytest.raises(DatasetError, match=r"different params.*--restart"):
        build_dataset(CSV, out, PdfParams(qmax=20.0), chunk_size=3, **SYNC)
    with pytest.raises(DatasetError, match="label_set, labels"):
        build_dataset(CSV, out, chunk_size=3, label_set="all230", **SYNC)
    s = build_dataset(CSV, out, PdfParams(qmax=20.0), chunk_size=3, restart=True, **SYNC)
    assert s.complete and read_dataset(out).params.qmax == 20.0


def test_changed_source_is_detected(tmp_path):
    src = tmp_path / "s.csv"
    shutil.copy(CSV, src)
    out = tmp_path / "s.h5"
    build_dataset(src, out, chunk_size=3, max_chunks=1, **SYNC)
    src.write_text(src.read_text().replace("tb-Ni", "tb-Nickel"))
    with pytest.raises(DatasetError, match="different source"):
        build_dataset(src, out, chunk_size=3, **SYNC)


def test_damaged_part_is_reported(tmp_path):
    out = tmp_path / "p.h5"
    build_dataset(CSV, out, chunk_size=3, max_chunks=1, **SYNC)
    (parts_dir(out) / "chunk-00000.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="damaged part file"):
        build_dataset(CSV, out, chunk_size=3, **SYNC)


# --------------------------------------------------------------------------- split, X


def test_stratified_split():
    y = np.array([1] * 10 + [2] * 5 + [3] * 2 + [4])
    split = stratified_split(y, 0.2, seed=0)
    assert [int(split[y == k].sum()) for k in (1, 2, 3, 4)] == [2, 1, 1, 0]
    np.testing.assert_array_equal(split, stratified_split(y, 0.2, seed=0))
    assert any((stratified_split(y, 0.2, seed=s) != split).any() for s in range(1, 5))
    assert stratified_split(y, 0.0).sum() == 0


# --------------------------------------------------------------------------- read errors


def _tiny(path: Path, **manifest) -> Path:
    p = PdfParams()
    return write_dataset_file(
        path,
        ids=["a", "b"],
        formula=["Ni", "Ni"],
        space_group=np.array([225, 225]),
        G=np.random.default_rng(0).random((2, p.npoints)),
        split=np.array([0, 1]),
        params=p,
        manifest={"labels": [225], "label_set": "x", **manifest},
    )


def test_read_errors_are_one_line(tmp_path):
    cases = {}
    cases["not found"] = tmp_path / "missing.h5"
    cases["not an HDF5"] = tmp_path / "text.h5"
    cases["not an HDF5"].write_text("hello")
    cases["no 'manifest'"] = tmp_path / "plain.h5"
    with h5py.File(cases["no 'manifest'"], "w") as h5:
        h5["x"] = 1
    cases["not a pdfsg dataset"] = tmp_path / "other.h5"
    with h5py.File(cases["not a pdfsg dataset"], "w") as h5:
        h5.attrs["manifest"] = json.dumps({"format": "something"})
    cases["format_version 7"] = _tiny(tmp_path / "v7.h5")
    with h5py.File(cases["format_version 7"], "a") as h5:
        m = json.loads(h5.attrs["manifest"])
        h5.attrs["manifest"] = json.dumps({**m, "format_version": 7})
    cases["lacks array"] = _tiny(tmp_path / "nox.h5")
    with h5py.File(cases["lacks array"], "a") as h5:
        del h5["X"]
    cases["has 3 rows"] = _tiny(tmp_path / "rows.h5")
    with h5py.File(cases["has 3 rows"], "a") as h5:
        del h5["split"]
        h5["split"] = np.zeros(3, np.int8)
    cases["outside the manifest labels"] = _tiny(tmp_path / "lab.h5")
    with h5py.File(cases["outside the manifest labels"], "a") as h5:
        h5["space_group"][0] = 14
    cases["is a folder"] = tmp_path
    for match, path in cases.items():
        with pytest.raises(DatasetError, match=match) as info:
            read_dataset(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_roundtrip_and_manifest_only(tmp_path):
    path = _tiny(tmp_path / "t.h5")
    d = read_dataset(path)
    assert list(d.ids) == ["a", "b"] and len(d.train()) == 1 and len(d.test()) == 1
    assert read_manifest(path)["labels"] == [225]


# --------------------------------------------------------------------------- CLI


def test_cli_build_and_info(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    rc = main(
        [
            "dataset",
            "build",
            str(CSV),
            "-o",
            str(out),
            "--scheduler",
            "synchronous",
            "--chunk-size",
            "4",
            "--qmax",
            "20",
            "--uiso",
            "0.01",
            "--no-progress",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "6 structures (5 train, 1 test)" in text and "outside_label_set 1" in text
    d = read_dataset(out)
    assert d.params == PdfParams(qmax=20.0, uiso=0.01)
    assert main(["dataset", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Fm-3m" in text and "5 train / 1 test" in text


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["dataset", "info", str(tmp_path / "nope.h5")]) == 2
    assert "dataset file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("material_id\nmp-1\n")
    assert main(["dataset", "build", str(bad), "-o", str(tmp_path / "o.h5")]) == 2
    assert "no 'cif' column" in capsys.readouterr().err
    args = ["dataset", "build", str(CSV), "-o", str(tmp_path / "o.h5"), "--rmax", "1"]
    assert main(args) == 2
    assert "rmax" in capsys.readouterr().err


@pytest.mark.usefixtures("shared_data")
def test_build_from_shared_data(shared_data, tmp_path):
    src = shared_data / "structures" / "mpts52_dev.csv.gz"
    s = build_dataset(src, tmp_path / "mp.h5", limit=60, chunk_size=25, **SYNC)
    assert s.n_read == 60 and s.n_rows + s.n_skipped + s.n_duplicates == 60
    assert s.n_rows > 30
    assert set(s.skip_reasons) <= {"outside_label_set", "label_failed", "partial_occupancy"}


def _tiny_file(path, rows, G, params=None):
    """A two-label (14, 225) dataset file; ``rows`` are (id, formula, space group, split)."""
    from pdfsg.datasets import write_dataset_file

    ids, formula, sg, split = zip(*rows, strict=True)
    write_dataset_file(
        path,
        ids=list(ids),
        formula=list(formula),
        space_group=np.array(sg),
        G=G,
        split=np.array(split),
        params=params or PdfParams(),
        manifest={"label_set": "paper45", "labels": [14, 225]},
    )
    return path


def test_merge_keeps_splits_and_drops_cross_file_duplicates(tmp_path):
    from pdfsg.datasets import merge_datasets, read_dataset

    g = np.random.default_rng(0).normal(size=(4, PdfParams().npoints))
    a = _tiny_file(
        tmp_path / "a.h5",
        [("a1", "NaCl", 225, 0), ("a2", "Si", 14, 0), ("a3", "KCl", 225, 1)],
        g[:3],
    )
    # b1 is a2 under another id (same formula, space group and curve): a duplicate;
    # a3 appears again by id; b2 is new
    b = _tiny_file(
        tmp_path / "b.h5",
        [("b1", "Si", 14, 1), ("a3", "KCl", 225, 0), ("b2", "CsCl", 225, 1)],
        np.vstack([g[1], g[2], g[3]]),
    )
    summary = merge_datasets([a, b], tmp_path / "m.h5")
    assert summary.n_rows == 4 and summary.n_duplicates == 2
    ds = read_dataset(tmp_path / "m.h5")
    got = dict(zip(ds.ids.tolist(), ds.split.tolist(), strict=True))
    assert got == {"a1": 0, "a2": 0, "a3": 1, "b2": 1}
    c = _tiny_file(tmp_path / "c.h5", [("c1", "Si", 14, 0)], g[:1], PdfParams(qmax=20.0))
    with pytest.raises(DatasetError, match="PdfParams differ"):
        merge_datasets([a, c], tmp_path / "x.h5")


def test_combine_takes_roles_and_refuses_mismatches(tmp_path):
    from pdfsg.datasets import combine_datasets, read_dataset

    g = np.random.default_rng(1).normal(size=(5, PdfParams().npoints))
    real = read_dataset(
        _tiny_file(
            tmp_path / "real.h5",
            [("r1", "A", 14, 0), ("r2", "B", 225, 1), ("r3", "C", 225, 0)],
            g[:3],
        )
    )
    syn = read_dataset(
        _tiny_file(tmp_path / "syn.h5", [("s1", "D", 225, 0), ("s2", "E", 14, 1)], g[3:])
    )
    both = combine_datasets([(syn, "all-train"), (real, "train"), (real, "test")])
    assert dict(zip(both.ids.tolist(), both.split.tolist(), strict=True)) == {
        "s1": 0,
        "s2": 0,
        "r1": 0,
        "r3": 0,
        "r2": 1,
    }
    assert both.split.tolist() == [0, 0, 0, 0, 1]  # training rows first
    i = both.ids.tolist().index("s2")
    assert both.y[i] == 14 and np.allclose(both.G[i], syn.G[syn.ids.tolist().index("s2")])
    assert [s["n"] for s in both.manifest["source"]] == [2, 2, 1]
    assert both.manifest["counts"] == {"14": 2, "225": 3}
    with pytest.raises(DatasetError, match="unknown role 'val'"):
        combine_datasets([(real, "val")])
    q20 = read_dataset(
        _tiny_file(tmp_path / "q20.h5", [("q", "F", 14, 0)], g[:1], PdfParams(qmax=20.0))
    )
    with pytest.raises(DatasetError, match="other PdfParams"):
        combine_datasets([(real, "train"), (q20, "train")])
    with pytest.raises(DatasetError, match="no rows selected"):
        combine_datasets([(syn.subset(slice(0, 0)), "all-train")])
