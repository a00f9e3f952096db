"""How much the shipped answer gains from combining its parts otherwise: is the top-6 gap of
the paper's 45 groups the networks' or the combination's?

The shipped ensemble (``--model``, e.g. ``pdfsg-v8-r30``) answers with a product of experts::

    log p = log mean(members) + power · log(PDF-memory vote)
            + type_power · log(formula-type vote) + comp_power · log(composition ratio)

(:mod:`pdfsg.pdf_memory`, :mod:`pdfsg.composition_memory`; the 45-group members share how
they divide the 45 groups' mass, :class:`pdfsg.models.EnsembleClassifier`).  Each part is
computed once (cached, ``--cache``) for the clean mpts52 test rows of a dataset of all groups
(``work/mp_all.h5``, ids of ``--mpts52``) with the row's own composition, then recombined:

* ablations: each expert's power set to 0;
* more members: other installed networks of every group (``--extra``, e.g.
  ``pdfsg-v6-net-r30`` and ``pdfsg-v7-net-r20``, the latter on the first 20 Å);
* test-time stretches: the first member's mean over the curve stretched in r by 0.98 … 1.02;
* an embedding memory: the nearest PDF-memory curves in the first member's pooled-feature
  space (standardised, cosine), voting like the PDF memory (k 30, tau 0.03), power 0.25;
* a mixture tail: 0.9 · the product + 0.1 · the members' mean;
* weights fitted: every part's weight by NLL on the calibration rows (Nelder–Mead).

Every variant's weights are fixed before scoring, or fitted on the rows the model was
calibrated on (the hash-'cal' third); scores are on the other mpts52 test rows (those
``benchmarks/all_groups.py`` reports): top-1 / top-6 over the 45 groups ranked among the 45
(``--label-set paper45``) and over all groups, and per variant how many rows it moved into and
out of the 45-group top 6 against the shipped answer (a paired count: with n rows a change
of a few rows either way is noise).

Usage::

    python benchmarks/answer_combination.py work/mp_all.h5 --mpts52 work/mpts52_all.h5 \\
        --model pdfsg-v8-r30 --extra pdfsg-v6-net-r30 --extra pdfsg-v7-net-r20

Writes ``benchmarks/results/answer_combination.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

STRETCHES = (0.98, 0.99, 1.01, 1.02)
EMBEDDING_K, EMBEDDING_TAU, EMBEDDING_POWER = 30, 0.03, 0.25
MIXTURE_SHARE = 0.1
_TINY = 1e-12


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, _TINY, None))


def _features(model, X: np.ndarray, batch: int = 512) -> np.ndarray:
    """Pooled G(r) features of a one-network ``pdfsg-net`` model (its NumPy forward)."""
    (net,) = model._numpy_members()
    return np.concatenate([net.features(X[i : i + batch]) for i in range(0, len(X), batch)])


def build_parts(dataset: Path, mpts52: Path, model_name: str, extras: list[str]) -> dict:
    """Every part of the answer for the clean mpts52 test rows (module docstring)."""
    from pdfsg.artifact import load_model
    from pdfsg.calibration import used_for_calibration
    from pdfsg.composition_vector import encode_formulas
    from pdfsg.datasets import read_dataset
    from pdfsg.models import member_proba
    from pdfsg.preprocess import normalize_minmax

    model = load_model(model_name)
    if model.kind != "ensemble" or model.pdf_memory is None:
        raise SystemExit(f"--model {model_name}: not an ensemble with a PDF memory")
    ds = read_dataset(dataset)
    ids52 = set(map(str, read_dataset(mpts52).ids))
    test = np.flatnonzero(ds.split == 1)
    rows = np.array([i for i in test if str(ds.ids[i]) in ids52], dtype=np.int64)
    cal = used_for_calibration(model.manifest, ds.ids[rows])
    G = np.asarray(ds.G[rows], dtype=np.float64)
    n = model.params.npoints
    X = np.asarray(normalize_minmax(G[:, :n]), dtype=np.float32)
    comp = encode_formulas(ds.formula[rows])
    labels = np.asarray(model.labels)
    parts: dict = {"rows": rows, "calibration_rows": cal, "y": np.asarray(ds.y[rows])}
    parts["labels"] = labels
    t = time.perf_counter()
    for j, member in enumerate(model.members):
        parts[f"member{j}"] = member_proba(member, X, 0, comp)
        parts[f"member{j}_labels"] = np.asarray(member.labels)
    print(f"members: {time.perf_counter() - t:.0f} s", flush=True)
    memory = model.pdf_memory
    parts["pdf_memory"] = memory.proba(X, 0)
    parts["type_vote"] = memory.type_vote(*memory.type_neighbours(X, comp, 0))
    cm = model.composition_memory
    parts["composition_ratio"] = cm.proba(comp) / cm.prior
    print(f"memories: {time.perf_counter() - t:.0f} s", flush=True)
    first = model.members[0]
    r = np.asarray(ds.r, dtype=np.float64)
    for s in STRETCHES:
        Gs = np.stack([np.interp(r, r * s, g) for g in G])
        Xs = np.asarray(normalize_minmax(Gs[:, :n]), dtype=np.float32)
        parts[f"stretch{s}"] = member_proba(first, Xs, 0, comp)
    print(f"stretches: {time.perf_counter() - t:.0f} s", flush=True)
    for name in extras:
        extra = load_model(name)
        if tuple(extra.labels) != tuple(model.labels):
            raise SystemExit(f"--extra {name}: its groups are not the model's")
        Xe = np.asarray(normalize_minmax(G[:, : extra.params.npoints]), np.float32)
        parts[f"extra:{name}"] = member_proba(extra, Xe, 0, comp)
    print(f"extras: {time.perf_counter() - t:.0f} s", flush=True)
    pool = _features(first, memory.curves.astype(np.float32) / 255.0)
    query = _features(first, X)
    parts["embedding_vote"] = _embedding_vote(pool, query, memory.classes, len(labels))
    print(f"embedding memory: {time.perf_counter() - t:.0f} s", flush=True)
    parts["settings"] = np.array(
        [memory.power, memory.type_power, cm.power], dtype=np.float64
    )  # the shipped powers
    return parts


def _embedding_vote(pool: np.ndarray, query: np.ndarray, classes, n_classes: int) -> np.ndarray:
    """The nearest pool curves in feature space (standardised by the pool, cosine) vote
    exp((ρ − 1) / tau) each for their class (a small floor spread over all)."""
    mu, sd = pool.mean(axis=0), pool.std(axis=0) + 1e-6

    def unit(A):
        A = (A - mu) / sd
        return (A / np.linalg.norm(A, axis=1, keepdims=True)).astype(np.float32)

    P, Q = unit(pool), unit(query)
    out = np.full((Q.shape[0], n_classes), 1e-3 / n_classes)
    for i in range(0, Q.shape[0], 256):
        S = Q[i : i + 256] @ P.T
        best = np.argpartition(-S, EMBEDDING_K - 1, axis=1)[:, :EMBEDDING_K]
        sims = np.take_along_axis(S, best, axis=1).astype(np.float64)
        w = np.exp((sims - 1.0) / EMBEDDING_TAU)
        rr = np.repeat(np.arange(best.shape[0]), EMBEDDING_K)
        np.add.at(out[i : i + 256], (rr, np.asarray(classes)[best].ravel()), w.ravel())
    return out / out.sum(axis=1, keepdims=True)


class Combiner:
    """The parts of :func:`build_parts` and the ways to recombine them."""

    def __init__(self, parts: dict) -> None:
        from pdfsg.spacegroups import label_set

        self.p = parts
        self.labels = parts["labels"]
        index = {int(v): i for i, v in enumerate(self.labels)}
        self.y = np.array([index.get(int(t), -1) for t in parts["y"]])
        paper45 = set(label_set("paper45"))
        self.in45_class = np.array([int(v) in paper45 for v in self.labels])
        self.in45_row = np.array([int(t) in paper45 for t in parts["y"]])
        self.cal = parts["calibration_rows"].astype(bool)
        self.members_full = [k for k in parts if k.startswith("member") and "_" not in k]
        self.powers = dict(zip(("pdf", "type", "comp"), parts["settings"], strict=True))
        #: the subset members' probabilities by the columns of their subset (as the ensemble)
        self.nested: dict = {}
        for k in self.members_full:
            lab = self.p[f"{k}_labels"]
            if tuple(lab) == tuple(self.labels):
                continue
            keep = np.array([int(v) in index for v in lab])
            cols = tuple(index[int(v)] for v in lab[keep])
            self.nested.setdefault(cols, []).append(self.p[k][:, keep])

    def _nest(self, full_mean: np.ndarray) -> np.ndarray:
        """``full_mean`` with the 45-group members' shares nested in (the ensemble's way)."""
        from pdfsg.models import nested_mean

        return nested_mean(full_mean, self.nested)

    def full_members(self) -> list[np.ndarray]:
        return [
            self.p[k]
            for k in self.members_full
            if tuple(self.p[f"{k}_labels"]) == tuple(self.labels)
        ]

    def product(self, members_mean: np.ndarray, pdf=None, type_=None, comp=None) -> np.ndarray:
        pw = self.powers
        return (
            _log(members_mean)
            + (pw["pdf"] if pdf is None else pdf) * _log(self.p["pdf_memory"])
            + (pw["type"] if type_ is None else type_) * _log(self.p["type_vote"])
            + (pw["comp"] if comp is None else comp) * np.log(self.p["composition_ratio"])
        )

    def hits(self, logp: np.ndarray, rows: np.ndarray, among45: bool) -> np.ndarray:
        """(rows, rank of the truth) ranks; 999 where the truth is not among the classes."""
        q = logp[rows].copy()
        if among45:
            q[:, ~self.in45_class] = -np.inf
        y = self.y[rows]
        ok = y >= 0
        t = np.where(ok, q[np.arange(rows.size), np.maximum(y, 0)], np.inf)
        rank = (q > t[:, None]).sum(axis=1) + 1
        rank[~ok] = 999
        return rank

    def score(self, logp: np.ndarray, shipped: np.ndarray) -> dict:
        ev45 = np.flatnonzero(~self.cal & self.in45_row)
        ev = np.flatnonzero(~self.cal)
        cal45 = np.flatnonzero(self.cal & self.in45_row)
        r45, r_all, rc = (
            self.hits(logp, ev45, True),
            self.hits(logp, ev, False),
            self.hits(logp, cal45, True),
        )
        s45 = self.hits(shipped, ev45, True)
        return {
            "eval_45": _pair(r45),
            "eval_all": _pair(r_all),
            "calibration_45": _pair(rc),
            "top6_gained": int(((r45 <= 6) & (s45 > 6)).sum()),
            "top6_lost": int(((r45 > 6) & (s45 <= 6)).sum()),
            "n_eval_45": int(ev45.size),
            "n_eval": int(ev.size),
            "n_calibration_45": int(cal45.size),
        }


def _pair(rank: np.ndarray) -> dict:
    return {
        "top1": round(float((rank <= 1).mean()), 4),
        "top6": round(float((rank <= 6).mean()), 4),
    }


def _fitted_weights(c: Combiner, parts: list[np.ndarray], w0: np.ndarray) -> np.ndarray:
    """Weights of the log-linear combination of ``parts`` minimising the NLL of the
    calibration rows (over the model's groups)."""
    from scipy.optimize import minimize

    rows = np.flatnonzero(c.cal & (c.y >= 0))
    logs = [part[rows] for part in parts]
    y = c.y[rows]

    def nll(w):
        z = sum(wi * li for wi, li in zip(w, logs, strict=True))
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(y.size), y] - np.log(np.exp(z).sum(axis=1))).mean())

    res = minimize(nll, w0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-3})
    return res.x


def variants(c: Combiner, extras: list[str]) -> list[tuple[str, np.ndarray, str]]:
    """(name, log-probabilities, how it was set) of every combination scored."""
    full = c.full_members()
    shipped_mean = c._nest(np.mean(full, axis=0))
    shipped = c.product(shipped_mean)
    out = [("shipped", shipped, "the model's own")]
    out.append(("without the PDF memory", c.product(shipped_mean, pdf=0.0), "ablation"))
    out.append(("without the formula-type vote", c.product(shipped_mean, type_=0.0), "ablation"))
    out.append(("without the composition memory", c.product(shipped_mean, comp=0.0), "ablation"))
    out.append(("members only (no memories)", _log(shipped_mean), "ablation"))
    out.append(("first member alone + memories", c.product(full[0]), "ablation"))
    for name in extras:
        mean = c._nest(np.mean([*full, c.p[f"extra:{name}"]], axis=0))
        out.append((f"+ member {name}", c.product(mean), "fixed"))
    if len(extras) > 1:
        mean = c._nest(np.mean(full + [c.p[f"extra:{n}"] for n in extras], axis=0))
        out.append(("+ every extra member", c.product(mean), "fixed"))
    stretched = np.mean([full[0]] + [c.p[f"stretch{s}"] for s in STRETCHES], axis=0)
    mean = c._nest(np.mean([stretched, *full[1:]], axis=0))
    out.append(("first member averaged over r stretches 0.98-1.02", c.product(mean), "fixed"))
    emb = shipped + EMBEDDING_POWER * _log(c.p["embedding_vote"])
    out.append(("+ embedding memory", emb, "fixed"))
    prod = np.exp(shipped - shipped.max(axis=1, keepdims=True))
    prod /= prod.sum(axis=1, keepdims=True)
    mix = (1 - MIXTURE_SHARE) * prod + MIXTURE_SHARE * shipped_mean
    out.append(("mixture tail (0.9 product + 0.1 members)", _log(mix), "fixed"))
    logs = [_log(m) for m in full]
    logs += [_log(c._nest(full[0])) - _log(full[0])]  # what the 45-group members add
    logs += [_log(c.p["pdf_memory"]), _log(c.p["type_vote"]), np.log(c.p["composition_ratio"])]
    logs += [_log(c.p[f"extra:{n}"]) for n in extras] + [_log(c.p["embedding_vote"])]
    w0 = np.array(
        [1.0 / len(full)] * len(full)
        + [1.0, c.powers["pdf"], c.powers["type"], c.powers["comp"]]
        + [0.0] * len(extras)
        + [0.0]
    )
    w = _fitted_weights(c, logs, w0)
    fitted = sum(wi * li for wi, li in zip(w, logs, strict=True))
    weights = "NLL on the calibration rows: " + ", ".join(f"{v:.2f}" for v in w)
    out.append(("every part's weight fitted", fitted, weights))
    return out


def render(result: dict) -> str:
    first = result["variants"][0]["scores"]
    lines = [
        "# Recombining the shipped answer (`benchmarks/answer_combination.py`)",
        "",
        f"Model `{result['model']}`, clean mpts52 test rows of `{result['dataset']}` with the "
        f"row's composition: scored on the {first['n_eval']} rows it was not calibrated on "
        f"({first['n_eval_45']} of the 45 groups, ranked among the 45); weights fitted on the "
        f"{first['n_calibration_45']} calibration rows of the 45 (their scores in the last "
        "column, for reference).  top-1 / top-6 [%]; gained / lost: rows moved into / out of "
        "the 45-group top 6 against the shipped answer.",
        "",
        "| combination | set by | 45 groups | all groups | top-6 gained / lost | "
        "calibration rows, 45 groups |",
        "|---|---|---|---|---|---|",
    ]
    for v in result["variants"]:
        s = v["scores"]
        lines.append(
            f"| {v['name']} | {v['set_by']} | {_fmt(s['eval_45'])} | {_fmt(s['eval_all'])} | "
            f"{s['top6_gained']} / {s['top6_lost']} | {_fmt(s['calibration_45'])} |"
        )
    lines += ["", result["reading"], ""]
    return "\n".join(lines)


def _fmt(p: dict) -> str:
    return f"{100 * p['top1']:.1f} / {100 * p['top6']:.1f}"


def _reading(result: dict) -> str:
    ship = result["variants"][0]["scores"]["eval_45"]["top6"]
    others = [v for v in result["variants"][1:] if not v["set_by"].startswith("ablation")]
    best = max(others, key=lambda v: v["scores"]["eval_45"]["top6"])
    n = result["variants"][0]["scores"]["n_eval_45"]
    se = 100 * np.sqrt(ship * (1 - ship) / n)
    return (
        f"**Reading**: the shipped answer's 45-group top-6 is {100 * ship:.1f} % (s.e. "
        f"{se:.1f} points on {n} rows); the best recombination, {best['name']!r}, gives "
        f"{100 * best['scores']['eval_45']['top6']:.1f} % "
        f"({best['scores']['top6_gained']} rows gained, {best['scores']['top6_lost']} lost). "
        "A gap that no recombination of these parts closes is the networks' (and the "
        "memories' curves'), not the combination's."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path, help="a dataset of all groups (mp_all.h5)")
    ap.add_argument("--mpts52", type=Path, required=True)
    ap.add_argument("--model", default="pdfsg-v8-r30")
    ap.add_argument("--extra", action="append", default=[], help="another installed network")
    ap.add_argument("--cache", type=Path, default=Path("work/answer_combination_parts.npz"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    from pdfsg.models import limit_threads

    limit_threads(1)
    key = {"model": args.model, "extra": args.extra, "dataset": str(args.dataset)}
    cached = None
    if args.cache.exists():
        z = np.load(args.cache, allow_pickle=False)
        if json.loads(str(z["key"])) == key:
            cached = {k: z[k] for k in z.files if k != "key"}
    if cached is None:
        cached = build_parts(args.dataset, args.mpts52, args.model, args.extra)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.cache, key=json.dumps(key), **cached)
    c = Combiner(cached)
    found = variants(c, args.extra)
    shipped = found[0][1]
    result = {
        "command": "python benchmarks/answer_combination.py "
        + " ".join(
            [str(args.dataset), "--mpts52", str(args.mpts52), "--model", args.model]
            + [f"--extra {e}" for e in args.extra]
        ),
        "model": args.model,
        "dataset": str(args.dataset),
        "variants": [
            {"name": name, "set_by": how, "scores": c.score(logp, shipped)}
            for name, logp, how in found
        ],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    result["reading"] = _reading(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "answer_combination.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "answer_combination.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
