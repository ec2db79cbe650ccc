"""Groups other than S_n: a task that needs one, and the cost of an exact equivariant basis.

(a) Local maxima on a ring of 16 values (``configs/ring.yaml``, dihedral symmetry D_16). The shipped
    config trains a D_16-equivariant network (``GroupLinear`` layers); the same command with
    ``--model.init_args.net models/pairwise.yaml`` trains an S_n-equivariant set network that
    compares every pair of elements (``PairwiseNet``). Both run as a user would (the CLI, a fresh process each), and the last
    validation accuracies are read from TensorBoard. The best any S_n-equivariant predictor can do
    is printed beside them: it knows each value's rank in the set but not its neighbours.

(b) Time to compute a basis of the equivariant linear maps from pairs to pairs (order 2 -> 2) for
    S_n and C_n, n = 4..20: the orbit basis of ``symlight.groups.equivariant_basis`` (union-find
    over index tuples; as a sparse tensor, since C_n has n^3 basis maps) against the numerical
    method of EMLP (Finzi et al. 2021) written here: stack ``P_g ⊗ P_g - I`` over the generators
    (``P_g`` the action of ``g`` on pairs, so ``P_g ⊗ P_g`` acts on pair -> pair maps) and take
    the null-space from a dense SVD. Each (method, group, n) runs in its own process with a 60 s
    limit; a method stops at the first n it cannot finish in 60 s (or that would need more than
    ``--max-gb`` of memory). The null-space dimension is checked against the orbit count.
    Both run on one BLAS thread (``--threads``), so that other load on the machine does not turn
    into threads waiting on each other.

    python benchmarks/groups.py [--skip-training] [--skip-timings] [--max-n 20] [--limit 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from _runs import fit, machine, scalars

ROOT = Path(__file__).resolve().parent


# -- (b) the two ways to get a basis ----------------------------------------------------------------


def _group(name: str, n: int):
    from symlight.groups import cyclic, symmetric

    return {"S": symmetric, "C": cyclic}[name](n)


def orbit_basis(name: str, n: int) -> int:
    from symlight.groups import equivariant_basis

    basis = equivariant_basis(_group(name, n), 2, 2, sparse=True)
    return basis.shape[0]


def nullspace_basis(name: str, n: int) -> int:
    """EMLP's method: the null-space of the stacked constraints ``(P_g ⊗ P_g - I) vec(W) = 0``."""
    gens = _group(name, n).generators.numpy()
    size = n**4  # entries of a map from pairs (n^2) to pairs (n^2)
    blocks = []
    for g in gens:
        pairs = (g[:, None] * n + g[None, :]).reshape(-1)  # g acting on the n^2 pairs
        maps = (pairs[:, None] * n * n + pairs[None, :]).reshape(-1)  # on the n^4 map entries
        block = -np.eye(size)
        block[np.arange(size), maps] += 1.0  # P_g ⊗ P_g - I, dense
        blocks.append(block)
    constraints = np.concatenate(blocks)
    _, singular, _ = np.linalg.svd(constraints, full_matrices=False)
    tol = singular.max() * size * np.finfo(np.float64).eps
    return int((singular <= tol).sum()) + max(0, size - len(singular))


def nullspace_gb(name: str, n: int) -> float:
    """Memory the dense constraints and their SVD need, roughly: three copies."""
    return 3 * {"S": 2, "C": 1}[name] * n**8 * 8 / 1e9


METHODS = {"orbits": orbit_basis, "nullspace": nullspace_basis}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one(method: str, name: str, n: int) -> None:
    """Child process: time one basis computation, print JSON."""
    _group(name, 2)  # imports done before the clock starts
    start = time.perf_counter()
    dim = METHODS[method](name, n)
    print(json.dumps({"seconds": time.perf_counter() - start, "dim": dim}))


def timed(method: str, name: str, n: int, limit: float, threads: int) -> dict:
    """Run one computation in a fresh process; the process gets ``limit`` plus start-up time."""
    cmd = [sys.executable, __file__, "--one", method, name, str(n)]
    env = {**os.environ, **{k: str(threads) for k in THREAD_VARIABLES}}
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=limit + 20, check=True, env=env
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "why": f"> {limit:.0f} s"}
    except subprocess.CalledProcessError as error:
        return {"seconds": None, "why": f"failed: {error.stderr.strip().splitlines()[-1]}"}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["seconds"] > limit:
        result.update(seconds=None, why=f"> {limit:.0f} s")
    return result


def timings(max_n: int, limit: float, max_gb: float, threads: int) -> list[str]:
    rows = [
        "| group | n | orbit basis (s) | null-space SVD (s) | ratio | basis maps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    largest = {}
    for name in ("S", "C"):
        stopped: dict[str, str] = {}
        for n in range(4, max_n + 1):
            cells = {}
            for method in METHODS:
                if method in stopped:
                    cells[method] = {"seconds": None, "why": "stopped"}
                    continue
                if method == "nullspace" and nullspace_gb(name, n) > max_gb:
                    stopped[method] = "memory"
                    cells[method] = {
                        "seconds": None,
                        "why": f"needs {nullspace_gb(name, n):.0f} GB",
                    }
                    continue
                cells[method] = timed(method, name, n, limit, threads)
                if cells[method]["seconds"] is None:
                    stopped[method] = cells[method]["why"]
                else:
                    largest[(name, method)] = n
            o, s = cells["orbits"], cells["nullspace"]
            if o.get("dim") and s.get("dim") and o["dim"] != s["dim"]:
                raise AssertionError(f"{name}_{n}: {o['dim']} orbits but null-space {s['dim']}")
            ratio = f"{s['seconds'] / o['seconds']:.0f}x" if o["seconds"] and s["seconds"] else "-"
            cell = [f"{c['seconds']:.3f}" if c["seconds"] else c["why"] for c in (o, s)]
            dim = o.get("dim", s.get("dim", "-"))
            rows.append(f"| {name}_n | {n} | {cell[0]} | {cell[1]} | {ratio} | {dim} |")
            print(rows[-1], flush=True)
            if len(stopped) == len(METHODS):
                break
    rows.append("")
    for name in ("S", "C"):
        got = {m: largest.get((name, m), "none") for m in METHODS}
        rows.append(
            f"Largest n within {limit:.0f} s, {name}_n: orbit basis {got['orbits']} (of "
            f"{max_n} tried), null-space SVD {got['nullspace']}."
        )
    return rows


# -- (a) the ring task ------------------------------------------------------------------------------


def set_network_ceiling(n: int) -> float:
    """Best expected fraction of positions right for any S_n-equivariant predictor.

    Such a predictor sees a value and the multiset of values, not the arrangement, which is
    uniformly random given the multiset: a value with ``r`` smaller others is a local maximum with
    probability ``r (r - 1) / ((n - 1)(n - 2))``, and ``r`` is uniform on ``0..n-1``.
    """
    p = np.array([r * (r - 1) / ((n - 1) * (n - 2)) for r in range(n)])
    return float(np.maximum(p, 1 - p).mean())


def training(n: int = 16) -> list[str]:
    runs = {
        f"D_{n}-equivariant (GroupLinear, ring.yaml)": [],
        "S_n-equivariant set network (PairwiseNet, models/pairwise.yaml)": [
            "--model.init_args.net",
            "models/pairwise.yaml",
        ],
    }
    rows = [
        "| network | val acc (rings solved) | val element acc | fit wall time (s) | fit CPU time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, extra in runs.items():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, workdir = fit(["--config", "ring.yaml", *extra])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        run = sorted((workdir / "lightning_logs").glob("*/version_*"))[-1]
        values = scalars(run)
        acc, element = values["val/acc"][-1], values["val/element_acc"][-1]
        rows.append(f"| {label} | {acc:.3f} | {element:.3f} | {seconds:.0f} | {cpu:.0f} |")
        print(rows[-1], flush=True)
    rows.append(
        f"| best possible S_n-equivariant predictor (exact) | - | {set_network_ceiling(n):.3f} | - | - |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "GROUP", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-timings", action="store_true")
    parser.add_argument("--max-n", type=int, default=20)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per basis")
    parser.add_argument("--max-gb", type=float, default=8.0, help="memory cap of the SVD")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per basis")
    args = parser.parse_args()
    if args.one:
        method, name, n = args.one
        one(method, name, int(n))
        return
    print(f"# {date.today()}, {machine()}", flush=True)
    lines = [] if args.skip_training else [*training(), ""]
    if not args.skip_timings:
        lines += timings(args.max_n, args.limit, args.max_gb, args.threads)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
