"""``pdfsg train DATASET.h5 --model PRESET --out DIR``: train a model and save its artifact."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    from pdfsg.train import PRESETS  # light: no torch import

    p = subparsers.add_parser(
        "train",
        help="train a logistic regression or a CNN on a dataset file",
        description=(
            "Train a model preset on the training split of a dataset file and save it (manifest "
            "+ weights) into --out, with checkpoint.pt and history.json for networks. "
            "Presets: " + ", ".join(PRESETS) + "."
        ),
    )
    p.add_argument("dataset", metavar="DATASET.h5", help="dataset file (pdfsg dataset build)")
    p.add_argument(
        "--model",
        required=True,
        metavar="PRESET",
        help="logreg-x, logreg-x2, cnn-paper (= paper), s1-<c1>-<c2>-k<K>-h<H>-e<E> "
        "(Table S1 variants), pdfsg-net",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output / checkpoint folder")
    p.add_argument("--epochs", type=int, default=None, help="epochs per ensemble member")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--ensemble", type=int, default=None, help="networks averaged")
    p.add_argument(
        "--max-train", type=int, default=None, metavar="N", help="train on at most N rows"
    )
    p.add_argument(
        "--min-per-group",
        type=int,
        default=None,
        metavar="N",
        help="for a dataset of every space group (dataset build --label-set all230): the "
        "classes are the groups with at least N distinct training structures, the other "
        "groups' rows are dropped (default 10: enough to learn and calibrate a class)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other training-config field (JSON value), e.g. --set schedule='\"cosine\"'",
    )
    p.add_argument(
        "--model-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a network-constructor field (JSON value), e.g. --model-set dropout=0.5",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="fine-tune: start from this trained network (folder or shipped name, e.g. "
        "pdfsg-v7-net-r30; same preset and network settings) instead of random weights; "
        "the groups it shares with the dataset start from its output rows, new ones fresh; "
        "give a lower --lr and e.g. --set warmup_epochs=0.5",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:N]")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.add_argument(
        "--ddp",
        action="store_true",
        help="DistributedDataParallel; launch with torchrun --nproc-per-node=N",
    )
    p.add_argument(
        "--augment",
        action="store_true",
        help="measurement-realism effects on the fly (lower Qmax, extra Qdamp, strain, "
        "nanoparticle envelope, baseline, noise; pdfsg.augment.AugmentConfig defaults)",
    )
    p.add_argument(
        "--augment-share",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="with --augment: the share of each batch's rows that get the effects; the "
        "others stay clean (default 1: every row)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    from pdfsg.errors import ParamsError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    from pdfsg.cli.common import check_output_path
    from pdfsg.train import train

    check_output_path(args.out, "--out", folder=True)
    augment_fn = None
    if args.augment_share != 1.0 and not args.augment:
        from pdfsg.errors import ParamsError

        raise ParamsError("--augment-share needs --augment")
    if args.augment:
        from pdfsg.augment import AugmentConfig, on_the_fly
        from pdfsg.datasets import read_manifest
        from pdfsg.errors import ParamsError
        from pdfsg.params import PdfParams

        params = PdfParams.from_dict(read_manifest(args.dataset)["params"])
        try:
            augment_fn = on_the_fly(AugmentConfig(), params, args.augment_share)
        except ParamsError as exc:
            raise ParamsError(f"--augment-share: {exc}") from None
    bar = None

    def progress(ev) -> None:  # only called on the main process
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            from tqdm import tqdm

            unit = "batch" if ev.stage in ("batch", "epoch") else "fit"
            bar = tqdm(total=ev.total_batches or None, unit=unit, file=sys.stderr, leave=True)
        if ev.stage == "batch":
            bar.update(1)
            bar.set_description(f"member {ev.member + 1}/{ev.members} epoch {ev.epoch + 1}")
        elif ev.stage == "epoch":
            m = ev.metrics
            post = {"loss": f"{m['train_loss']:.3g}", "acc": f"{m['train_acc']:.3f}"}
            if m.get("test_acc") is not None:
                post["test_acc"] = f"{m['test_acc']:.3f}"
            bar.set_postfix(post)
        else:
            bar.total = ev.total_batches
            bar.n = ev.done_batches
            bar.set_description(ev.stage)
            bar.refresh()

    from pdfsg.errors import ParamsError

    try:
        result = train(
            args.dataset,
            args.model,
            args.out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            ensemble=args.ensemble,
            max_train=args.max_train,
            train_overrides=_parse_sets(args.set),
            augment=augment_fn,
            model_overrides=_parse_sets(args.model_set),
            device=args.device,
            resume=args.resume,
            progress=progress,
            ddp=args.ddp,
            min_per_group=args.min_per_group,
            init_from=args.init_from,
        )
    except ParamsError as exc:  # named as the option: --min-per-group
        from pdfsg.cli.common import option_error

        raise option_error(exc) from None
    finally:
        if bar is not None:
            bar.close()
    if not result.main_process:
        return 0
    top = result.metrics.get("top_k_accuracy")
    summary = f"saved {result.out_dir}"
    if top:
        summary += f"  test top-1 {100 * top['1']:.1f} %  top-6 {100 * top['6']:.1f} %"
        summary += f"  (n = {result.metrics['n']})"
    print(summary)
    manifest = json.loads((result.out_dir / "manifest.json").read_text(encoding="utf-8"))
    if "min_per_group" in manifest:
        dropped = manifest["training"]["dataset"]["dropped_below_min_per_group"]
        print(
            f"  {len(manifest['labels'])} space groups with >= {manifest['min_per_group']} "
            f"training structures; dropped {dropped['rows']} rows of {len(dropped['groups'])} "
            f"rarer groups ({dropped['train_rows']} train, {dropped['test_rows']} test)"
        )
    return 0
