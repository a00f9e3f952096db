"""``pdfsg dataset build|info``: make a dataset file from structures, or describe one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pdfsg.cli.common import add_pdf_params_arguments, check_output_path, pdf_params_from_args
from pdfsg.errors import PdfsgError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="build a dataset of simulated PDFs, or show what a dataset file holds",
        description="Build a dataset of simulated PDFs from crystal structures, or describe one.",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _no_action(parser))

    build = sub.add_parser(
        "build",
        help="simulate G(r) for a structure collection and write a dataset file",
        description=(
            "Read structures (folder of CIFs, .cif, .csv/.csv.gz with a 'cif' column), label "
            "them with spglib, keep those in the label set, drop duplicates, simulate G(r) in "
            "parallel with Dask and write an HDF5 dataset with a stratified train/test split. "
            "An interrupted build resumes when rerun with the same arguments."
        ),
    )
    build.add_argument(
        "source",
        nargs="?",
        help="folder of CIFs, .cif file, .csv/.csv.gz with a cif column (or use --synthetic)",
    )
    build.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="generate N random crystals (PyXtal, balanced over the label set) instead of "
        "reading SOURCE; generation runs on the Dask workers",
    )
    build.add_argument(
        "--synthetic-distribution",
        default="balanced",
        choices=("balanced", "paper45"),
        help="balanced per class, or in proportion to the paper's Table 1 counts",
    )
    build.add_argument(
        "--synthetic-stats",
        metavar="STATS.json",
        help="statistics learned from your own structures (pdfsg stats build); default: the "
        "table shipped with pdfsg",
    )
    build.add_argument("-o", "--out", required=True, metavar="OUT.h5", help="dataset file")
    build.add_argument(
        "--label-set", default="paper45", choices=("paper45", "all230"), help="default paper45"
    )
    build.add_argument(
        "--symprec", type=float, default=0.1, help="spglib tolerance [Å] (default 0.1)"
    )
    build.add_argument(
        "--engine", default="fast", choices=("fast", "pdffit2"), help="PDF engine (default fast)"
    )
    build.add_argument(
        "--scheduler",
        metavar="ADDR",
        default=None,
        help="address of a running Dask scheduler (tcp://host:port); default: a local "
        "cluster, or 'synchronous' to run in this process",
    )
    build.add_argument(
        "--workers", type=int, default=None, metavar="N", help="local worker processes (all cores)"
    )
    build.add_argument(
        "--chunk-size", type=int, default=256, metavar="N", help="structures per task (256)"
    )
    build.add_argument("--seed", type=int, default=0, help="seed of the train/test split (0)")
    build.add_argument(
        "--test-fraction", type=float, default=0.2, help="test share per space group (0.2)"
    )
    build.add_argument("--no-dedupe", action="store_true", help="keep duplicate structures")
    build.add_argument(
        "--restart", action="store_true", help="discard an unfinished build instead of resuming"
    )
    build.add_argument(
        "--keep-parts", action="store_true", help="keep OUT.h5.parts/ after writing the file"
    )
    build.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use the first N structures only"
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_pdf_params_arguments(build)
    build.set_defaults(func=run_build)

    info = sub.add_parser("info", help="print a dataset file's manifest summary")
    info.add_argument("file", metavar="FILE.h5")
    info.set_defaults(func=run_info)
    merge = sub.add_parser(
        "merge",
        help="concatenate dataset files (same settings), keeping splits, dropping duplicates",
    )
    merge.add_argument("inputs", nargs="+", metavar="FILE.h5")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.h5")
    merge.set_defaults(func=run_merge)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


class _Bar:
    """A tqdm bar fed by the library's ``progress(done, total)`` callback."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        self._enabled = enabled

    def __call__(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self._bar = tqdm(
                total=total,
                unit="structure",
                unit_scale=False,
                desc="simulating",
                mininterval=0.5 if tty else 30.0,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_build(args: argparse.Namespace) -> int:
    from pdfsg.datasets import build_dataset

    params = pdf_params_from_args(args)
    if (args.source is None) == (args.synthetic is None):
        raise PdfsgError("give a SOURCE or --synthetic N (not both)")
    check_output_path(args.out, "-o")
    source = args.source
    if args.synthetic is not None:
        source = (
            f"synthetic:{args.synthetic},seed={args.seed},groups={args.label_set},"
            f"distribution={args.synthetic_distribution}"
        )
        if args.synthetic_stats:
            source += f",stats={Path(args.synthetic_stats).resolve()}"
    bar = _Bar(enabled=not args.no_progress)
    try:
        summary = build_dataset(
            source,
            args.out,
            params,
            engine=args.engine,
            label_set=args.label_set,
            symprec=args.symprec,
            dedupe=not args.no_dedupe,
            test_fraction=args.test_fraction,
            seed=args.seed,
            scheduler=args.scheduler,
            n_workers=args.workers,
            chunk_size=args.chunk_size,
            progress=bar,
            restart=args.restart,
            keep_parts=args.keep_parts,
            limit=args.limit,
        )
    finally:
        bar.close()
    reasons = ", ".join(f"{k} {v}" for k, v in summary.skip_reasons.items()) or "none"
    print(f"wrote {summary.path}")
    print(
        f"  {summary.n_rows} structures ({summary.n_train} train, {summary.n_test} test) in "
        f"{len(summary.counts)} space groups, from {summary.n_read} read"
    )
    print(f"  skipped {summary.n_skipped} ({reasons}); see {summary.skipped_log}")
    print(f"  duplicates dropped {summary.n_duplicates}; see {summary.duplicates_log}")
    print(
        f"  {summary.n_chunks} chunks ({summary.n_chunks_resumed} resumed), "
        f"{summary.wall_s:.1f} s, {summary.n_read / max(summary.wall_s, 1e-9):.1f} structures/s"
    )
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from pdfsg.datasets import merge_datasets

    check_output_path(args.output, "-o")
    summary = merge_datasets(args.inputs, args.output)
    print(
        f"wrote {summary.path}: {summary.n_rows} rows ({summary.n_duplicates} duplicates dropped)"
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from pdfsg import spacegroups
    from pdfsg.datasets import read_manifest

    m = read_manifest(args.file)
    p = m["params"]
    split = m.get("split", {})
    src = m.get("source", {})
    print(f"{args.file}: pdfsg dataset, format version {m['format_version']}")
    print(f"  source      {src.get('path') or src.get('description', '?')}")
    if src.get("sha256"):
        print(f"  sha256      {src['sha256']}")
    print(f"  created     {m.get('created', '?')} by pdfsg {m.get('code_version', '?')}")
    print(
        f"  PDF         engine {m.get('engine')}, {p['radiation']}, r {p['rmin']:g}-{p['rmax']:g} Å"
        f" step {p['rstep']:.5g}, Q {p['qmin']:g}-{p['qmax']:g} 1/Å, qdamp {p['qdamp']:g},"
        f" qbroad {p['qbroad']:g}, uiso {p['uiso']:g}, delta2 {p['delta2']:g}"
    )
    print(
        f"  labels      {m.get('label_set')} ({len(m['labels'])} groups), "
        f"symprec {m.get('symprec')}"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in m.get("skip_reasons", {}).items()) or "none"
    print(
        f"  rows        {m.get('n_rows')} of {m.get('n_read')} read; skipped {m.get('n_skipped')}"
        f" ({reasons}); duplicates {m.get('n_duplicates')}"
    )
    print(
        f"  split       {split.get('n_train')} train / {split.get('n_test')} test "
        f"({split.get('method')}, test fraction {split.get('test_fraction')}, "
        f"seed {split.get('seed')})"
    )
    counts = {int(k): int(v) for k, v in m.get("counts", {}).items()}
    print(f"  {'#':>5}  {'symbol':<10} {'system':<13} {'count':>7}")
    for number in sorted(counts):
        group = spacegroups.get(number)
        print(f"  {number:>5}  {group.symbol:<10} {group.crystal_system:<13} {counts[number]:>7}")
    empty = [int(n) for n in m["labels"] if int(n) not in counts]
    if empty:
        print(f"  no rows for {len(empty)} group(s) of the label set: {_ranges(empty)}")
    return 0


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(f"{start}-{prev}" if prev > start else str(start))
        if n is not None:
            start = prev = n
    return ", ".join(out)
