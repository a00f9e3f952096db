"""Cost of the networks: parameters, FLOPs and CPU time per batch of 64.

Writes ``benchmarks/results/model_cost.json``.  For each model: trainable parameters,
forward FLOPs per sample (torch's FlopCounterMode; 1 multiply-add = 2 FLOPs), FLOPs of one
training step on a batch of 64 (forward + backward), and the median wall time of a training
step (forward, weighted cross-entropy, backward, Adam update) and of an inference pass on a
batch of 64, on this machine's CPU with the given number of threads.

Usage::

    python benchmarks/model_cost.py [--threads 2] [--repeats 10] [--npoints 209]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pdfsg.models.cnn import build_network, config_from_dict
from pdfsg.params import PdfParams
from pdfsg.train import PRESETS

MODELS = ("cnn-paper", "pdfsg-net")


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _time(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def measure(
    name: str, params: PdfParams, n_classes: int, batch: int, repeats: int, n_train: int
) -> dict:
    preset = PRESETS[name]
    cfg = {**preset.model, "n_classes": n_classes, "npoints": params.npoints}
    if preset.kind == "pdfsg-net":
        cfg.update(rmin=params.rmin, rstep=params.rstep)
    torch.manual_seed(0)
    net = build_network(preset.kind, config_from_dict(preset.kind, cfg))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, params.npoints)
    y = torch.randint(0, n_classes, (batch,))
    w = torch.rand(n_classes)

    def step() -> None:
        net.train()
        loss = (F.cross_entropy(net(x), y, reduction="none") * w[y]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer() -> None:
        net.eval()
        with torch.no_grad():
            net(x)

    net.eval()
    with torch.no_grad():
        fwd = _flops(lambda: net(x[:1]))
    train_flops = _flops(step)
    t_step = _time(step, repeats)
    t_inf = _time(infer, repeats)
    # a training step at the preset's own batch size, for the whole-run estimate
    pb = preset.train.batch_size
    if pb != batch:
        x = torch.rand(pb, params.npoints)
        y = torch.randint(0, n_classes, (pb,))
        t_preset = statistics.median(_time(step, max(3, repeats // 2)))
    else:
        t_preset = statistics.median(t_step)
    t = preset.train
    steps = math.ceil(n_train / pb) * t.epochs * t.ensemble
    return {
        "kind": preset.kind,
        "config": config_from_dict(preset.kind, cfg).to_dict(),
        "parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "forward_flops_per_sample": fwd,
        "train_step_flops_batch": train_flops,
        "train_step_ms_batch": statistics.median(t_step),
        "train_step_ms_batch_all": [round(v, 2) for v in t_step],
        "inference_ms_batch": statistics.median(t_inf),
        "preset_training": {
            "epochs": t.epochs,
            "ensemble": t.ensemble,
            "batch_size": pb,
            "train_step_ms_preset_batch": t_preset,
            "n_train_rows": n_train,
            "estimated_cpu_hours": steps * t_preset / 3.6e6,
            "flops_per_training_row_seen": train_flops / batch,
            "estimated_total_training_flops": train_flops / batch * n_train * t.epochs * t.ensemble,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=45)
    ap.add_argument(
        "--n-train",
        type=int,
        default=81442,
        help="training rows for the whole-run estimate (default: 80 %% of the paper's 101,802)",
    )
    ap.add_argument("--rmax", type=float, default=30.0, help="grid upper end [Å] (30: 209 points)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "model_cost.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = PdfParams(rmax=args.rmax)
    results = {
        name: measure(name, params, args.classes, args.batch, args.repeats, args.n_train)
        for name in MODELS
    }
    a, b = results["cnn-paper"], results["pdfsg-net"]
    doc = {
        "batch": args.batch,
        "npoints": params.npoints,
        "n_classes": args.classes,
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],  # shared machine: timings vary
        "models": results,
        "ratios_paper_over_pdfsg_net": {
            "parameters": a["parameters"] / b["parameters"],
            "forward_flops": a["forward_flops_per_sample"] / b["forward_flops_per_sample"],
            "train_step_ms": a["train_step_ms_batch"] / b["train_step_ms_batch"],
            "inference_ms": a["inference_ms_batch"] / b["inference_ms_batch"],
            "preset_training_cpu_hours": a["preset_training"]["estimated_cpu_hours"]
            / b["preset_training"]["estimated_cpu_hours"],
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for name, r in results.items():
        print(
            f"{name:10s} params {r['parameters']:>9,d}  "
            f"fwd {r['forward_flops_per_sample'] / 1e6:8.1f} MFLOP/sample  "
            f"train step {r['train_step_ms_batch']:7.1f} ms/64  infer "
            f"{r['inference_ms_batch']:6.1f} ms/64"
        )
        pt = r["preset_training"]
        print(
            f"{'':10s} preset: {pt['epochs']} epochs x {pt['ensemble']} at batch "
            f"{pt['batch_size']}: ~{pt['estimated_cpu_hours']:.1f} CPU-hours for "
            f"{pt['n_train_rows']:,d} rows"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
