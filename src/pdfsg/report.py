"""Figures of an evaluation, after the paper's: top-k accuracy with ΔA_k (Fig. 2), accuracy
per space group coloured by crystal system with marker size by class frequency (Fig. 3), the
row-normalised confusion matrix (Fig. 6) and learning curves (Fig. 5).

All functions draw with matplotlib's Agg backend (no display needed) and return the path
written.  :func:`write_report` writes them all into a folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pdfsg.evaluate import Evaluation

__all__ = [
    "plot_accuracy_per_group",
    "plot_confusion",
    "plot_learning_curves",
    "plot_prediction",
    "plot_series",
    "plot_top_k",
    "write_report",
]

_FALLBACK_COLORS = {
    "triclinic": "#1f3b73",
    "monoclinic": "#ff7f0e",
    "orthorhombic": "#2ca02c",
    "tetragonal": "#1f77b4",
    "trigonal": "#7f7f7f",
    "hexagonal": "#e5c100",
    "cubic": "#8c1a1a",
    "unknown": "#000000",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors() -> dict[str, str]:
    try:
        from pdfsg.spacegroups import crystal_system_colors

        return {**_FALLBACK_COLORS, **crystal_system_colors()}
    except Exception:
        return dict(_FALLBACK_COLORS)


def _label(number: int, symbol: bool = True) -> str:
    if not symbol:
        return str(number)
    try:
        from pdfsg.spacegroups import get

        return f"{get(int(number)).symbol} ({number})"
    except Exception:
        return str(number)


def _system(number: int) -> str:
    try:
        from pdfsg.spacegroups import get

        return get(int(number)).crystal_system
    except Exception:
        return "unknown"


def plot_top_k(ev: Evaluation, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """A_k for k = 1..6 with an inset of ΔA_k (paper Fig. 2)."""
    plt = _plt()
    ks = sorted(ev.top_k)
    acc = [100 * ev.top_k[k] for k in ks]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(ks, acc, "o-", color="#c0392b")
    for k, a in zip(ks, acc, strict=True):
        ax.annotate(f"{a:.1f}", (k, a), textcoords="offset points", xytext=(0, -14), ha="center")
    ax.set_xlabel("top-i predictions considered")
    ax.set_ylabel("accuracy $A_i$ (%)")
    ax.set_xticks(ks)
    ax.set_title(title or f"top-k accuracy ({ev.split}, n = {ev.n})")
    d = ev.delta_top_k
    if d:
        inset = ax.inset_axes([0.55, 0.12, 0.4, 0.35])
        inset.bar(list(d), [100 * v for v in d.values()], color="#c0392b")
        inset.set_xlabel(r"$i$", fontsize=8)
        inset.set_ylabel(r"$\Delta A_i$ (%)", fontsize=8)
        inset.tick_params(labelsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_accuracy_per_group(
    ev: Evaluation, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Top-1 accuracy of each space group vs its number; colour = crystal system, marker
    area = relative class frequency in the training data (else in the evaluated split)."""
    plt = _plt()
    colors = _colors()
    freq = ev.train_counts if ev.train_counts is not None else ev.counts
    freq = np.asarray(freq, dtype=np.float64)
    rel = freq / freq.max() if freq.max() > 0 else freq
    fig, ax = plt.subplots(figsize=(7, 4))
    seen: set[str] = set()
    for i, lab in enumerate(ev.labels):
        if np.isnan(ev.per_class[i]):
            continue
        cs = _system(lab)
        ax.scatter(
            lab,
            100 * ev.per_class[i],
            s=15 + 250 * rel[i],
            color=colors.get(cs, "#000000"),
            alpha=0.8,
            edgecolors="none",
            label=cs if cs not in seen else None,
        )
        seen.add(cs)
    ax.set_xlabel("space group number")
    ax.set_ylabel("correctly classified (%)")
    ax.set_xlim(0, 232)
    ax.set_ylim(-3, 103)
    ax.legend(fontsize=7, loc="lower right", markerscale=0.6)
    ax.set_title(title or "accuracy per space group (marker size: training frequency)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_confusion(ev: Evaluation, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Row-normalised confusion matrix with space-group symbols (paper Fig. 6)."""
    plt = _plt()
    K = len(ev.labels)
    size = max(5.0, 0.22 * K + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(ev.confusion, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    names = [_label(v) for v in ev.labels]
    fs = 8 if K <= 20 else max(4, int(360 / K))
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xticklabels(names, rotation=90, fontsize=fs)
    ax.set_yticklabels(names, fontsize=fs)
    ax.set_xlabel("predicted space group")
    ax.set_ylabel("true space group")
    if K <= 50:
        for i in range(K):
            for j in range(K):
                v = ev.confusion[i, j]
                if v >= 0.05:
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}".lstrip("0"),
                        ha="center",
                        va="center",
                        fontsize=max(3, fs - 2),
                        color="white" if v > 0.5 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    ax.set_title(title or f"confusion matrix ({ev.split}, row-normalised)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_learning_curves(
    history: dict[str, Any], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Training / test accuracy and test loss per epoch for every ensemble member (Fig. 5)."""
    plt = _plt()
    members = history.get("members") or []
    fig, ax = plt.subplots(figsize=(6, 4))
    ax2 = ax.twinx()
    for m, rows in enumerate(members):
        if not rows:
            continue
        ep = [r["epoch"] for r in rows]
        tag = f" (member {m})" if len(members) > 1 else ""
        ls = ["-", "--", ":", "-."][m % 4]
        ax.plot(
            ep, [100 * r["train_acc"] for r in rows], ls, color="#1f77b4", label="train acc" + tag
        )
        if rows[0].get("test_acc") is not None:
            ax.plot(
                ep, [100 * r["test_acc"] for r in rows], ls, color="#d62728", label="test acc" + tag
            )
            ax2.plot(
                ep, [r["test_loss"] for r in rows], ls, color="#2ca02c", label="test loss" + tag
            )
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax2.set_ylabel("test loss (cross-entropy)", color="#2ca02c")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    if h1 or h2:
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    ax.set_title(title or f"learning curves ({history.get('preset') or history.get('kind', '')})")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_reliability(
    ev: Evaluation, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Reliability diagram: accuracy of the top-1 answer against its probability, per bin
    (bar width = bin, bar height = accuracy), the diagonal of perfect calibration, and the
    share of rows per bin; the ECE in the title."""
    plt = _plt()
    rel = ev.calibration["reliability"]
    edges = np.asarray(rel["edges"])
    mid = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    acc = np.array([np.nan if a is None else a for a in rel["accuracy"]])
    count = np.asarray(rel["count"], dtype=float)
    fig, (ax, axn) = plt.subplots(
        2, 1, figsize=(5.5, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.bar(mid, np.nan_to_num(acc), width=width, edgecolor="#1f3b73", color="#8fb3e0",
           label="accuracy in the bin")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="#a33", lw=1, label="perfect calibration")
    ax.set(ylabel="top-1 accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(title or f"reliability, n = {ev.n}: ECE {ev.calibration['ece']:.3f}")
    ax.legend(loc="upper left", frameon=False)
    axn.bar(mid, count / max(count.sum(), 1), width=width, color="#777")
    axn.set(xlabel="top-1 probability", ylabel="share of rows")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def write_report(
    ev: Evaluation,
    folder: str | os.PathLike[str],
    history: dict[str, Any] | None = None,
) -> list[Path]:
    """Write every figure (and ``metrics.json``) into ``folder`` (created; its parent must
    exist); returns the paths."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    written = [
        plot_top_k(ev, folder / "top_k_accuracy.png"),
        plot_accuracy_per_group(ev, folder / "accuracy_per_group.png"),
        plot_confusion(ev, folder / "confusion_matrix.png"),
    ]
    if ev.calibration.get("reliability"):
        written.append(plot_reliability(ev, folder / "reliability.png"))
    if history and any(history.get("members") or []):
        written.append(plot_learning_curves(history, folder / "learning_curves.png"))
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(ev.to_json(), indent=1) + "\n", encoding="utf-8")
    written.append(metrics)
    return written


def plot_prediction(result: Any, path: str | os.PathLike[str]) -> Path:
    """The input curve on the model's grid (left) beside the top-K probabilities (right),
    bars coloured by crystal system with a legend; the file's name (not its folder) is the
    title and the result's warnings are printed under the plots.  ``result`` is a
    :class:`pdfsg.predict.PredictionResult`; the folder of ``path`` must exist."""
    import textwrap

    from matplotlib.patches import Patch

    plt = _plt()
    colors = _colors()
    warnings = [str(w) for w in (result.warnings or [])]
    lines = [ln for w in warnings for ln in textwrap.wrap("warning: " + w, 150)]
    height = 3.8 + 0.18 * len(lines)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, height), gridspec_kw={"width_ratios": [3, 2]})
    if result.r is not None and result.x is not None:
        ax1.plot(result.r, result.x, lw=1.1, color="#1f3b73")
    title = Path(str(result.file)).name if result.file else "input"
    ax1.set(xlabel="r (Å)", ylabel="normalised G(r)", title=title)
    preds = list(result.predictions)[::-1]
    names = [f"{p.symbol} ({p.space_group})" for p in preds]
    ax2.barh(
        names,
        [p.probability for p in preds],
        color=[colors.get(p.crystal_system, "#000000") for p in preds],
    )
    ax2.set(xlabel="probability", xlim=(0, 1), title=f"top {len(preds)}")
    for k, p in enumerate(preds):
        if p.probability > 0.85:  # long bar: the value inside its end, in white
            ax2.text(p.probability - 0.01, k, f"{p.probability:.2f}", va="center", ha="right",
                     color="white", fontweight="bold")  # fmt: skip
        else:
            ax2.text(p.probability + 0.01, k, f"{p.probability:.2f}", va="center")
    systems = list(dict.fromkeys(p.crystal_system for p in preds[::-1]))
    ax2.legend(
        handles=[Patch(color=colors.get(c, "#000000"), label=c) for c in systems],
        title="crystal system",
        fontsize=7,
        title_fontsize=7,
        loc="lower right",
    )
    bottom = 0.0
    if lines:
        bottom = min(0.5, (0.18 * len(lines) + 0.15) / height)
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="#8c1a1a", va="bottom")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_series(series: Any, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Each candidate's probability against the series coordinate (file order or a header
    value), one line per candidate coloured by crystal system (dashes tell apart groups of
    one system).  ``series`` is a :class:`pdfsg.series.Series`; the folder of ``path`` must
    exist."""
    plt = _plt()
    colors = _colors()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    styles = ["-", "--", ":", "-."]
    used: dict[str, int] = {}
    for k, (number, symbol) in enumerate(zip(series.candidates, series.symbols, strict=True)):
        system = _system(number)
        n = used.get(system, 0)
        used[system] = n + 1
        ax.plot(
            series.x,
            series.probabilities[:, k],
            styles[n % len(styles)],
            marker="o",
            ms=3,
            color=colors.get(system, "#000000"),
            label=f"{symbol} ({number}), {system}",
        )
    ax.set(
        xlabel="file (series order)" if series.x_label == "index" else series.x_label,
        ylabel="probability",
        ylim=(0, 1),
        title=title or f"space-group probabilities along the series ({len(series.files)} files)",
    )
    if series.x_label == "index":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
