"""Learning curve: accuracy vs number of training structures, for two or three network sizes.

The rows are those of ``tools/shipped_model.py train`` (the same dataset arguments, the
same :func:`assemble`: real datasets with their train/test splits, ``--aug-from``
augmented copies, ``--train-only`` datasets, ``--min-per-group`` for datasets of every
group).  For each point:

* **Structures**: ``--sizes`` distinct training structures (a structure and its augmented
  copies ``id#augK`` count once); the structures are put in one random order (``--seed``)
  and a point takes the first N of it, so the 10k subset lies inside the 30k subset and so
  on.  A size above what the data hold is capped (reported as such).  Every point is
  scored on the same test rows: all of them.
* **Networks** (:data:`MODELS`): ``small`` (pdfsg-net-comp with half the channels),
  ``default`` (the ``pdfsg-net-comp`` preset as the shipped family trains it), ``large``
  (wider, one more dilated block); ``default-g`` (``pdfsg-net``, G(r) only) on request.
  Network-constructor overrides of the presets (:func:`pdfsg.train.train`'s
  ``model_overrides``), so every other setting is the preset's.
* **Budget** (:func:`epochs_for`): about ``--steps`` optimizer steps per point, i.e.
  ``epochs = clamp(ceil(steps * batch / rows), --min-epochs, --max-epochs)`` with ``rows``
  the point's training rows (clean + augmented) and ``batch`` the preset's (128); small
  subsets get more epochs, the largest at least ``--min-epochs``.  ``--epochs`` fixes it.
* **Scores**: top-1 ... top-6 of the network alone (no calibration, no composition
  memory), with the composition withheld and with each row's own formula given, on the
  mpts52 test rows (ids of ``--mpts52``: the part like the hidden test set) of the 45
  groups (ranked among the model's groups in the 45, the paper's protocol) and of all the
  model's groups, and on all test rows.  Test rows a shipped model was calibrated on
  (``--exclude-calibrated-of``, default the default family) are left out, so the numbers
  compare with ``benchmarks/composition.py`` and the model cards.
* **Time**: training seconds per point (the sum of its epochs' seconds in the run's
  history, so resumed runs count once; includes each epoch's test evaluation), seconds per
  optimizer step, and the machine (cores, torch threads, device).

Resumable: every point trains into ``--work/<model>/s<structures>`` (an interrupted run
resumes from its last epoch checkpoint) and its scores are saved there (``point.json``); a
rerun skips finished points.  ``--max-minutes`` stops at an epoch end when the next epoch
would not fit (at the latest when the time is spent), to be resumed by the same command.
Each run rewrites the results from every finished point of ``--work``.

Usage::

    python benchmarks/learning_curve.py work/mp_paper45.h5 work/protos_paper45.h5 \\
        work/wbm_paper45.h5 --aug-from work/mpts52_paper45.h5 work/mp20_paper45.h5 \\
        work/protos_paper45.h5 work/wbm_paper45.h5 --mpts52 work/mpts52_paper45.h5 \\
        [--sizes 10000 30000 100000 300000] [--models small default large] \\
        [--steps 30000] [--device auto] [--work work/learning_curve] [--max-minutes 60] \\
        [--plan] [--plot]

Writes ``benchmarks/results/learning_curve.{json,md}`` (and ``.png`` with ``--plot``);
``--stem`` names them otherwise (a second curve at another budget beside the first).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: network sizes: name -> (preset, network-constructor overrides of the preset)
MODELS: dict[str, tuple[str, dict]] = {
    "small": (
        "pdfsg-net-comp",
        {
            "stem_channels": 16,
            "stages": ((24, 2, 1), (32, 2, 1), (48, 2, 1), (64, 1, 2)),
            "composition_hidden": 32,
        },
    ),
    "default": ("pdfsg-net-comp", {}),
    "large": (
        "pdfsg-net-comp",
        {
            "stem_channels": 48,
            "stages": ((64, 2, 1), (96, 2, 1), (128, 2, 1), (192, 1, 2), (192, 1, 4)),
            "composition_hidden": 96,
        },
    ),
    "default-g": ("pdfsg-net", {}),
}
DEFAULT_MODELS = ("small", "default", "large")
DEFAULT_SIZES = (10_000, 30_000, 100_000, 300_000)

#: the settings every point of one --work folder shares (checked on every run)
SETTING_KEYS = (
    "datasets", "aug_from", "train_only", "copies", "rmax", "val_fraction", "min_per_group",
    "mpts52", "exclude_calibrated_of", "seed", "steps", "min_epochs", "max_epochs", "epochs",
)  # fmt: skip


class OutOfTime(Exception):
    """Raised from the progress callback when ``--max-minutes`` is spent."""


# --------------------------------------------------------------------------- the rules


def parent_ids(ids) -> np.ndarray:
    """The structure of every row: an augmented copy ``mp-1#aug2`` is ``mp-1``."""
    return np.array([str(i).split("#", 1)[0] for i in ids], dtype=object)


def structure_ranks(ids, seed: int = 0) -> np.ndarray:
    """Per row, the position of its structure in one random order of the distinct
    structures (``seed``); a point of N structures takes the rows of rank < N, so smaller
    points are nested inside larger ones.  The order depends only on the set of structure
    ids and the seed, not on the row order."""
    parents = parent_ids(ids)
    if parents.size == 0:
        return np.zeros(0, dtype=np.int64)
    unique, inverse = np.unique(parents.astype(str), return_inverse=True)
    perm = np.random.default_rng([int(seed), 2024]).permutation(unique.size)
    rank = np.empty(unique.size, dtype=np.int64)
    rank[perm] = np.arange(unique.size)
    return rank[inverse.ravel()]


def subset_rows(split: np.ndarray, ids, n_structures: int, seed: int = 0):
    """Rows of a point: every test row (split 1) and the training rows (split 0) of the
    first ``n_structures`` structures of :func:`structure_ranks`; validation rows (split
    2) are left out.  Returns ``(rows, structures actually taken, structures available)``."""
    split = np.asarray(split)
    train = np.flatnonzero(split == 0)
    ranks = structure_ranks(np.asarray(ids, dtype=object)[train], seed)
    available = int(ranks.max()) + 1 if ranks.size else 0
    n = min(int(n_structures), available)
    rows = np.sort(np.concatenate([np.flatnonzero(split == 1), train[ranks < n]]))
    return rows, n, available


def epochs_for(rows: int, steps: int, batch: int, min_epochs: int = 2, max_epochs: int = 60) -> int:
    """Epochs for ``rows`` training rows: enough for about ``steps`` optimizer steps of
    ``batch`` rows, ``clamp(ceil(steps * batch / rows), min_epochs, max_epochs)``."""
    if rows < 1:
        raise ValueError("no training rows")
    return int(min(max(math.ceil(steps * batch / rows), min_epochs), max_epochs))


# --------------------------------------------------------------------------- scoring


def _topk(proba: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    from pdfsg.evaluate import top_k_accuracy

    if y.size == 0:
        return None
    return {str(k): round(float(v), 4) for k, v in top_k_accuracy(proba, y).items()}


def _proba(model, X: np.ndarray, comp: np.ndarray | None, batch: int = 4096) -> np.ndarray:
    parts = []
    for i in range(0, X.shape[0], batch):
        extra = {} if comp is None else {"comp": comp[i : i + batch]}
        parts.append(model.predict_proba(X[i : i + batch], calibrated=False, **extra))
    return np.concatenate(parts) if parts else np.zeros((0, len(model.labels)))


def score_point(model, ds, test: np.ndarray, mp52: np.ndarray) -> dict:
    """Top-k of one trained network on the test rows ``test`` (``mp52``: mask of the
    mpts52 ones), G(r) only and (composition-aware networks) with the rows' formulas."""
    from pdfsg.composition_vector import encode_formulas
    from pdfsg.hierarchy import restrict, restriction
    from pdfsg.spacegroups import label_set

    labels = tuple(int(v) for v in model.labels)
    lookup = np.full(231, -1, dtype=np.int64)
    lookup[np.asarray(labels, dtype=np.int64)] = np.arange(len(labels))
    y = lookup[np.asarray(ds.y[test], dtype=np.int64)]
    X = ds.X[test][:, : model.params.npoints]
    in45 = np.isin(np.asarray(ds.y[test], dtype=np.int64), label_set("paper45"))
    keep = restriction(labels, "paper45")
    position = np.full(len(labels), -1, dtype=np.int64)
    position[keep] = np.arange(keep.size)
    modes = {"g_only": None}
    if getattr(model, "uses_composition", False):
        modes["with_composition"] = encode_formulas(ds.formula[test])
    out: dict = {
        "n": {
            "mpts52_45": int((mp52 & in45).sum()),
            "mpts52_all": int(mp52.sum()),
            "all_test": int(test.size),
        }
    }
    for mode, comp in modes.items():
        p = _proba(model, X, comp)
        m45 = mp52 & in45
        _, sub = restrict(labels, p[m45], keep)
        out[mode] = {
            "mpts52_45": _topk(sub, position[y[m45]]),
            "mpts52_all": _topk(p[mp52], y[mp52]),
            "all_test": _topk(p, y),
        }
    return out


# --------------------------------------------------------------------------- machine


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def machine(device: str) -> dict:
    import platform

    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "torch": torch.__version__,
        "processor": platform.processor() or platform.machine(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def n_parameters(preset: str, overrides: dict, n_classes: int, npoints: int) -> int:
    from pdfsg.models.cnn import build_network, config_from_dict
    from pdfsg.train import get_preset

    p = get_preset(preset)
    cfg = config_from_dict(
        p.kind, {**p.model, **overrides, "n_classes": n_classes, "npoints": npoints}
    )
    return int(sum(t.numel() for t in build_network(p.kind, cfg).parameters()))


# --------------------------------------------------------------------------- a point


def _history_seconds(folder: Path) -> tuple[float, int]:
    """Seconds and epochs recorded in a run's history.json (every member)."""
    path = folder / "history.json"
    if not path.is_file():
        return 0.0, 0
    rows = [r for m in json.loads(path.read_text())["members"] for r in m]
    return float(sum(r.get("seconds", 0.0) for r in rows)), len(rows)


def run_point(ds, plan: dict, args, deadline: float, bar) -> dict | None:
    """Train (or resume) one point and score it; None when the time ran out first."""
    from pdfsg.artifact import load_model
    from pdfsg.train import train

    folder: Path = plan["folder"]
    preset, overrides = MODELS[plan["model"]]
    sub = ds.subset(plan["rows"])
    last = {"done": plan["done_steps"], "epoch_t": time.time(), "epoch_s": 0.0}

    def progress(ev) -> None:
        bar.update(ev.done_batches - last["done"])
        last["done"] = ev.done_batches
        now = time.time()
        if ev.stage == "epoch":
            last["epoch_s"] = now - last["epoch_t"]
            last["epoch_t"] = now
            bar.set_postfix_str(f"{plan['label']} epoch {ev.epoch}/{ev.epochs}")
            if ev.epoch < ev.epochs and now + last["epoch_s"] > deadline:
                raise OutOfTime  # the checkpoint of this epoch is saved
        elif now > deadline:
            raise OutOfTime  # the unfinished epoch is redone on resume

    if not (folder / "manifest.json").is_file():
        resume = (folder / "checkpoint.pt").is_file()
        try:
            train(
                sub,
                preset,
                folder,
                epochs=plan["epochs"],
                seed=args.seed,
                model_overrides=overrides,
                device=args.device,
                resume=resume,
                progress=progress,
            )
        except OutOfTime:
            return None
    device = _device(args.device)
    model = load_model(folder, device=device)
    seconds, epochs_done = _history_seconds(folder)
    scores = score_point(model, ds, plan["test"], plan["mp52"])
    point = {
        "model": plan["model"],
        "preset": preset,
        "model_overrides": json.loads(json.dumps(overrides)),
        "parameters": plan["parameters"],
        "structures_requested": plan["requested"],
        "structures": plan["structures"],
        "capped": plan["capped"],
        "train_rows": plan["train_rows"],
        "epochs": plan["epochs"],
        "steps": plan["steps"],
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(plan["steps"], 1), 5),
        "machine": machine(device),
        "scores": scores,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if epochs_done != plan["epochs"]:
        raise SystemExit(f"{folder}: {epochs_done} epochs trained, {plan['epochs']} planned")
    (folder / "point.json").write_text(json.dumps(point, indent=1) + "\n")
    return point


# --------------------------------------------------------------------------- main


def _settings(args) -> dict:
    def plain(v):
        if isinstance(v, list):
            return [str(x) for x in v]
        return str(v) if isinstance(v, Path) else v

    return {k: plain(getattr(args, k)) for k in SETTING_KEYS}


def _check_settings(work: Path, settings: dict) -> None:
    path = work / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in SETTING_KEYS if old.get(k) != settings.get(k)]
        if diff:
            raise SystemExit(
                f"{work} holds points made with other settings ({', '.join(diff)} differ); "
                "choose another --work or rerun with the same arguments"
            )
    else:
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1) + "\n")


def _test_rows(ds, args) -> tuple[np.ndarray, np.ndarray, int]:
    """The scored test rows (calibration rows of ``--exclude-calibrated-of`` left out),
    the mask of the mpts52 ones, and how many were left out."""
    from pdfsg.calibration import used_for_calibration
    from pdfsg.datasets import read_dataset

    test = np.flatnonzero(ds.split == 1)
    used = np.zeros(test.size, dtype=bool)
    if args.exclude_calibrated_of and args.exclude_calibrated_of != "none":
        from pdfsg.artifact import load_model
        from pdfsg.predict import resolve_model_paths

        for path in resolve_model_paths(args.exclude_calibrated_of):
            used |= used_for_calibration(load_model(path).manifest, ds.ids[test])
    test = test[~used]
    mp52_ids = set(map(str, read_dataset(args.mpts52).ids)) if args.mpts52 else set()
    mp52 = np.array([str(ds.ids[i]) in mp52_ids for i in test], dtype=bool)
    return test, mp52, int(used.sum())


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE.parent / "tools"))
    from shipped_model import _assemble_args, _assembled
    from tqdm import tqdm

    from pdfsg.train import get_preset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _assemble_args(ap)
    ap.add_argument("--mpts52", type=Path, help="the mpts52 dataset: its ids mark those rows")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=30_000, help="optimizer steps per point")
    ap.add_argument("--min-epochs", type=int, default=2)
    ap.add_argument("--max-epochs", type=int, default=60)
    ap.add_argument("--epochs", type=int, help="fixed epochs for every point (no rule)")
    ap.add_argument("--seed", type=int, default=0, help="structure order and training seed")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument(
        "--exclude-calibrated-of",
        default="default",
        help="model / family whose calibration rows are left out of the test rows ('none')",
    )
    ap.add_argument("--work", type=Path, default=Path("work/learning_curve"))
    ap.add_argument("--max-minutes", type=float, help="stop (resumably) after this long")
    ap.add_argument("--plan", action="store_true", help="print the points and exit")
    ap.add_argument("--plot", action="store_true", help="also write learning_curve.png")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--stem", default="learning_curve", help="results file names: STEM.json, .md, .png"
    )
    args = ap.parse_args(argv)
    t_start = time.time()
    deadline = t_start + 60 * args.max_minutes if args.max_minutes else math.inf
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    _check_settings(args.work, _settings(args))

    ds = _assembled(args)
    print(
        f"assembled {len(ds)} rows ({int((ds.split == 0).sum())} train, "
        f"{int((ds.split == 1).sum())} test) in {time.time() - t_start:.0f} s",
        flush=True,
    )
    if not (ds.split == 0).any():
        raise SystemExit("the assembled datasets hold no training rows")
    test, mp52, n_cal = _test_rows(ds, args)
    plans: dict[tuple[str, int], dict] = {}
    for name in args.models:
        preset, overrides = MODELS[name]
        batch = get_preset(preset).train.batch_size
        n_par = n_parameters(preset, overrides, len(ds.labels), ds.params.npoints)
        for size in sorted(args.sizes):
            rows, n, available = subset_rows(ds.split, ds.ids, size, args.seed)
            key = (name, n)
            if key in plans:  # two sizes capped to the same point
                plans[key]["requested"].append(size)
                continue
            n_train = int((ds.split[rows] == 0).sum())
            epochs = args.epochs or epochs_for(
                n_train, args.steps, batch, args.min_epochs, args.max_epochs
            )
            folder = args.work / name / f"s{n}"
            per_epoch = math.ceil(n_train / batch)
            plans[key] = {
                "model": name,
                "label": f"{name} {n:,}",
                "folder": folder,
                "rows": rows,
                "test": test,
                "mp52": mp52,
                "requested": [size],
                "structures": n,
                "capped": n < size,
                "available": available,
                "train_rows": n_train,
                "epochs": epochs,
                "steps": epochs * per_epoch,
                "done_steps": _history_seconds(folder)[1] * per_epoch,
                "parameters": n_par,
                "finished": (folder / "point.json").is_file(),
            }
    print(
        f"{test.size} test rows scored ({int(mp52.sum())} mpts52; {n_cal} left out as "
        f"calibration rows of {args.exclude_calibrated_of}); epochs rule: "
        + (
            f"fixed at {args.epochs}"
            if args.epochs
            else f"clamp(ceil({args.steps} steps x batch / rows), {args.min_epochs}, "
            f"{args.max_epochs})"
        ),
        flush=True,
    )
    for p in plans.values():
        state = "done" if p["finished"] else f"{p['done_steps']}/{p['steps']} steps"
        cap = f" (capped: {p['available']:,} in the data)" if p["capped"] else ""
        print(
            f"  {p['label']}{cap}: {p['train_rows']:,} rows, {p['epochs']} epochs, "
            f"{p['steps']:,} steps, {p['parameters']:,} parameters [{state}]",
            flush=True,
        )
    if args.plan:
        return 0

    todo = [p for p in plans.values() if not p["finished"]]
    bar = tqdm(
        total=sum(p["steps"] for p in todo),
        initial=sum(p["done_steps"] for p in todo),
        unit="step",
        desc="learning curve",
        mininterval=2,
    )
    stopped = False
    for p in todo:
        if time.time() > deadline:
            stopped = True
            break
        bar.set_postfix_str(p["label"])
        if run_point(ds, p, args, deadline, bar) is None:
            stopped = True
            break
        p["finished"] = True
    bar.close()
    result = collect(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{args.stem}.md").write_text(render(result))
    if args.plot and result["points"]:
        plot(result, args.out / f"{args.stem}.png")
    print(render(result))
    left = sum(not p["finished"] for p in plans.values())
    if stopped or left:
        print(f"stopped with {left} point(s) to go; rerun the same command to resume")
    return 0


def collect(args) -> dict:
    """Every finished point of ``--work`` with the shared settings."""
    points = [json.loads(f.read_text()) for f in sorted(args.work.glob("*/s*/point.json"))]
    order = {name: k for k, name in enumerate(MODELS)}
    points.sort(key=lambda p: (order.get(p["model"], 99), p["structures"]))
    steps = (
        f"epochs fixed at {args.epochs}"
        if args.epochs
        else f"epochs = clamp(ceil({args.steps} * batch / training rows), {args.min_epochs}, "
        f"{args.max_epochs}), batch = the preset's"
    )
    return {
        "settings": json.loads((args.work / "settings.json").read_text()),
        "epochs_rule": steps,
        "subsampling": "distinct training structures (augmented copies count with their "
        "structure) in one random order (seed), a point takes the first N: nested",
        "scores": "network alone (uncalibrated, no composition memory); mpts52_45: mpts52 "
        "test rows of the 45 groups ranked among the model's groups in the 45; mpts52_all: "
        "mpts52 test rows ranked among all the model's groups; all_test: every test row",
        "points": points,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# --------------------------------------------------------------------------- rendering


def _pct(s: dict | None, k: str) -> str:
    return "-" if not s else f"{100 * s[k]:.1f}"


def _pair(s: dict | None) -> str:
    return "-" if not s else f"{_pct(s, '1')} / {_pct(s, '6')}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _headline(p: dict) -> tuple[str, dict | None]:
    mode = "with_composition" if "with_composition" in p["scores"] else "g_only"
    return mode, p["scores"][mode]["mpts52_45"]


def verdict(points: list[dict]) -> str | None:
    """Does top-1 (mpts52 rows, 45 groups, the model's main input) still rise between the
    two largest finished sizes of a model?  A difference beyond two standard errors
    (binomial, the two scores taken as independent) counts."""
    if len(points) < 2:
        return None
    a, b = points[-2], points[-1]
    mode, sa = _headline(a)
    _, sb = _headline(b)
    if not sa or not sb:
        return None
    n = a["scores"]["n"]["mpts52_45"]
    pa, pb = sa["1"], sb["1"]
    se = math.sqrt(max(pa * (1 - pa) + pb * (1 - pb), 1e-12) / n)
    d = pb - pa
    word = "still rises" if d > 2 * se else ("falls" if d < -2 * se else "is flat within noise")
    label = "G(r) + composition" if mode == "with_composition" else "G(r) only"
    return (
        f"**{a['model']}**: from {a['structures']:,} to {b['structures']:,} structures, top-1 "
        f"on the mpts52 rows (45 groups, {label}) {word}: {100 * pa:.1f} → {100 * pb:.1f} % "
        f"({100 * d:+.1f} points, 2 s.e. = {200 * se:.1f})."
    )


def render(result: dict) -> str:
    points = result["points"]
    if not points:
        return "Learning curve (`benchmarks/learning_curve.py`): no point finished yet.\n"
    lines = [
        "Learning curve (`benchmarks/learning_curve.py`): top-1 / top-6 [%] of the network "
        "alone; G = G(r) only, G+c = with the row's composition; * = the network's main "
        "input (G+c for composition-aware networks, G for `default-g`).",
        "",
        "| model | parameters | structures | train rows | epochs | steps | train time "
        "| s/step | mpts52, 45 groups G | G+c | mpts52, all groups * | all test * |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        s = p["scores"]
        c = s.get("with_composition", s["g_only"])
        req = "/".join(f"{r:,}" for r in p["structures_requested"])
        size = f"{p['structures']:,}" + (f" (asked {req}: all there are)" if p["capped"] else "")
        lines.append(
            f"| {p['model']} | {p['parameters']:,} | {size} | {p['train_rows']:,} "
            f"| {p['epochs']} | {p['steps']:,} | {_duration(p['train_seconds'])} "
            f"| {p['seconds_per_step']:.3f} | {_pair(s['g_only']['mpts52_45'])} "
            f"| {_pair(s.get('with_composition', {}).get('mpts52_45'))} "
            f"| {_pair(c['mpts52_all'])} | {_pair(c['all_test'])} |"
        )
    if points:
        n = points[0]["scores"]["n"]
        lines += [
            "",
            f"Test rows: {n['mpts52_45']:,} mpts52 rows of the 45 groups, {n['mpts52_all']:,} "
            f"mpts52 rows, {n['all_test']:,} in all.  {result['epochs_rule']}.",
        ]
        machines = {json.dumps(p["machine"], sort_keys=True) for p in points}
        for m in map(json.loads, sorted(machines)):
            where = m.get("gpu") or f"{m['processor']} CPU"
            lines.append(
                f"Trained on {m['device']} ({where}; {m['cpu_count']} cores, torch "
                f"{m['torch']} with {m['torch_threads']} threads)."
            )
        total = sum(p["train_seconds"] for p in points)
        lines.append(f"Total training time of the points above: {_duration(total)}.")
    by_model: dict[str, list[dict]] = {}
    for p in points:
        by_model.setdefault(p["model"], []).append(p)
    sentences = [v for v in map(verdict, by_model.values()) if v]
    if sentences:
        lines += ["", *sentences]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    by_model: dict[str, list[dict]] = {}
    for p in result["points"]:
        by_model.setdefault(p["model"], []).append(p)
    for k, (ax, title) in enumerate(zip(axes, ("top-1", "top-6"), strict=True)):
        key = "1" if k == 0 else "6"
        for j, (name, pts) in enumerate(by_model.items()):
            x = [p["structures"] for p in pts]
            color = f"C{j}"
            for mode, style in (("with_composition", "-"), ("g_only", "--")):
                y = [
                    100 * p["scores"][mode]["mpts52_45"][key]
                    if mode in p["scores"] and p["scores"][mode]["mpts52_45"]
                    else np.nan
                    for p in pts
                ]
                if np.all(np.isnan(y)):
                    continue
                suffix = " + composition" if mode == "with_composition" else ", G(r) only"
                ax.plot(x, y, style, marker="o", color=color, label=name + suffix)
        ax.set_xscale("log")
        ax.set_xlabel("training structures")
        ax.set_ylabel(f"{title} accuracy [%], mpts52 test rows (45 groups)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
