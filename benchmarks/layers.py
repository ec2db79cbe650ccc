"""Forward+backward time and peak memory of symlight's layers against set size.

Each layer is compared, in the same run, with a dense reference of the same linear map: one
``n^(k+l)`` weight matrix per channel pair, built from the basis maps (so it computes exactly the
same function) and trained as a dense parameter. Every measurement runs in a fresh subprocess:
peak memory is that process's peak resident set size (``resource.getrusage(...).ru_maxrss``)
minus its resident size just before the first forward pass (inputs and weights already
allocated), so it counts what the forward and backward passes add.

    python benchmarks/layers.py              # the full table (a few minutes on 2 CPU cores)
    python benchmarks/layers.py --quick      # small sizes only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch
from torch import Tensor, nn

from symlight.models import (
    BASES,
    ISAB,
    SAB,
    EquivariantLinear,
    PairwiseComparison,
    PairwiseLift,
)


class DenseEquivariant(nn.Module):
    """The same map as ``EquivariantLinear(k, l, ...)`` with a dense ``n^(k+l)`` matrix per channel pair."""

    def __init__(self, layer: EquivariantLinear, n: int) -> None:
        super().__init__()
        k, m = int(layer.in_order), int(layer.out_order)
        self.k, self.m, self.n = k, m, n
        units = torch.eye(n**k).view(n**k, *([n] * k), 1) if k else torch.ones(1, 1)
        mask = torch.ones(units.shape[0], n, dtype=torch.bool)
        with torch.no_grad():
            maps = BASES[(k, m)](units, mask, layer.pooling, n)
            basis = torch.stack([y.reshape(units.shape[0], -1).T for y in maps])  # (T, n^m, n^k)
            mix = layer.mix.weight.view(layer.out_channels, len(maps), layer.in_channels)
            # weight[:, o, :, c] is the n^m x n^k matrix from input channel c to output channel o
            weight = torch.einsum("otc,tlk->lokc", mix, basis)  # (n^m, c_out, n^k, c_in)
        self.weight = nn.Parameter(weight.contiguous())
        self.out_channels = layer.out_channels

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        rows, cols = self.weight.shape[0] * self.weight.shape[1], -1
        y = x.reshape(batch, -1) @ self.weight.view(rows, cols).T  # one matrix product
        return y.view(batch, *([self.n] * self.m), self.out_channels)


def build(kind: str, n: int, channels: int):
    """The module and its input order for a benchmark case."""
    if kind.startswith("linear") or kind.startswith("dense"):
        k, m = int(kind[-2]), int(kind[-1])
        layer = EquivariantLinear(k, m, channels, channels, "mean")
        return (DenseEquivariant(layer, n) if kind.startswith("dense") else layer), k
    if kind == "lift":
        return PairwiseLift(channels, channels, hidden=channels), 1
    if kind == "compare":
        return PairwiseComparison(channels, channels, channels, 2, "relu", "max"), 1
    if kind.startswith("compare-chunk"):
        chunk = int(kind.rsplit("-", 1)[1])
        return PairwiseComparison(channels, channels, channels, 2, "relu", "max", chunk), 1
    if kind == "sab":
        return SAB(channels, channels, heads=4), 1
    if kind == "isab":
        return ISAB(channels, channels, heads=4, inducing=16), 1
    raise ValueError(f"unknown benchmark case {kind!r}")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(kind: str, n: int, batch: int, channels: int, repeats: int, threads: int) -> dict:
    """Peak memory of one forward+backward, then the median time of ``repeats`` more."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module, order = build(kind, n, channels)
    x = torch.randn((batch,) + (n,) * order + (channels,), requires_grad=True)
    mask = torch.ones(batch, n, dtype=torch.bool)

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x, mask).square().mean().backward()

    before = _rss_bytes()
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "kind": kind,
        "n": n,
        "batch": batch,
        "channels": channels,
        "seconds": statistics.median(times),
        "peak_mb": max(peak - before, 0) / 2**20,
        "peak_total_mb": peak / 2**20,
    }


def run_case(kind: str, n: int, batch: int, channels: int, repeats: int, threads: int) -> dict:
    """``measure`` in a fresh subprocess, so that its peak memory is its own."""
    args = [sys.executable, __file__, "--measure", kind, str(n), str(batch), str(channels)]
    proc = subprocess.run(
        [*args, str(repeats), str(threads)], capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"kind": kind, "n": n, "batch": batch, "channels": channels, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# (ours, dense reference or None, sizes, sizes for the reference, batch, channels)
CASES = [
    ("linear11", "dense11", [10, 100, 1_000, 10_000, 100_000], [10, 100, 1_000], 8, 8),
    ("linear10", "dense10", [10, 100, 1_000, 10_000, 100_000], [10, 100, 1_000], 8, 8),
    ("linear12", "dense12", [8, 16, 32, 100, 316, 1_000], [8, 16, 32, 64], 8, 8),
    ("linear21", "dense21", [8, 16, 32, 100, 316, 1_000], [8, 16, 32, 64], 8, 8),
    ("linear22", "dense22", [8, 16, 32, 100, 316, 1_000], [8, 16, 32], 8, 8),
    ("lift", None, [10, 100, 316, 1_000], [], 8, 8),
    ("compare", None, [100, 316, 1_000], [], 8, 32),
    ("compare-chunk-32", None, [100, 316, 1_000], [], 8, 32),
    ("sab", None, [10, 100, 1_000], [], 8, 32),
    ("isab", None, [10, 100, 1_000, 10_000, 100_000], [], 8, 32),
]
QUICK = {"sizes": 100, "dense": 32}


def _fmt(row: dict | None, key: str) -> str:
    if row is None:
        return ""
    if "error" in row:
        return "failed"
    return f"{row[key] * 1e3:.2f}" if key == "seconds" else f"{row[key]:.0f}"


def table(results: list[dict]) -> str:
    """Markdown table: ours and the dense reference side by side, with the time ratio."""
    lines = [
        "| layer | n | B x C | ours ms | ours peak MB | dense ms | dense peak MB | dense/ours |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    by_key = {(r["kind"], r["n"]): r for r in results}
    for ours, dense, sizes, _, batch, channels in CASES:
        for n in sizes:
            row = by_key.get((ours, n))
            if row is None:
                continue
            ref = by_key.get((dense, n)) if dense else None
            ratio = ""
            if ref and "error" not in ref and "error" not in row:
                ratio = f"{ref['seconds'] / row['seconds']:.1f}x"
            lines.append(
                f"| {ours} | {n} | {batch} x {channels} | {_fmt(row, 'seconds')} | "
                f"{_fmt(row, 'peak_mb')} | {_fmt(ref, 'seconds')} | {_fmt(ref, 'peak_mb')} | "
                f"{ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--measure", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, *sizes = args.measure
        print(json.dumps(measure(kind, *map(int, sizes))))
        return
    results = []
    for ours, dense, sizes, dense_sizes, batch, channels in CASES:
        for n in sizes:
            if args.quick and n > QUICK["sizes"]:
                continue
            results.append(run_case(ours, n, batch, channels, args.repeats, args.threads))
            print(results[-1], file=sys.stderr, flush=True)
            if dense and n in dense_sizes and not (args.quick and n > QUICK["dense"]):
                results.append(run_case(dense, n, batch, channels, args.repeats, args.threads))
                print(results[-1], file=sys.stderr, flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{stamp}, {platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch "
        f"{torch.__version__}, {args.threads} torch thread(s) per measurement\n"
    )
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
