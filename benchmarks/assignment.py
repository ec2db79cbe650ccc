"""Linear assignment at one training budget: the equivariant network against two baselines.

Each model trains for the same wall-clock time (``--seconds``) with AdamW and a cosine schedule on
the task's loss (cross-entropy over each row's columns and each column's rows), then is scored on
fixed validation matrices by the task's metrics (row accuracy, greedy-decoded cost gap, solve rate):

- **equivariant**: the network of ``configs/assignment.yaml`` (S_n x S_n), trained on sizes
  5..20 as that config does, scored at n = 10, 20 and 50;
- **mlp**: an MLP over the flattened ``n x n`` matrix returning ``n^2`` scores (no symmetry;
  ``n = 10`` only, its input size);
- **deepsets**: DeepSets over the rows, each row's ``n`` costs as its features, ``n`` scores per
  row (S_n on the rows only; ``n = 10`` only);

beside two references without weights: the trivial baseline (greedy decoding of the negated
costs) and 20 Sinkhorn iterations on ``-C / 0.01`` (an entropic assignment, no learning).

    python benchmarks/assignment.py                 # 300 s per model (about 16 minutes)
    python benchmarks/assignment.py --seconds 60    # a quick look
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from symlight.models import DeepSets, EquivariantNetwork
from symlight.tasks import AssignmentDataModule

ROOT = Path(__file__).resolve().parent.parent


def equivariant() -> nn.Module:
    config = yaml.safe_load((ROOT / "configs" / "assignment.yaml").read_text())
    options = dict(config["model"]["init_args"]["net"]["init_args"])
    options["in_order"] = tuple(options["in_order"])
    return EquivariantNetwork(1, 1, (1, 1), **options)


class FlatMLP(nn.Module):
    """An MLP over the flattened matrix: ``n^2`` costs in, ``n^2`` scores out."""

    def __init__(self, n: int, hidden: int = 512, depth: int = 3) -> None:
        super().__init__()
        widths = [n * n] + [hidden] * depth
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, n * n))

    def forward(self, x: Tensor, mask=None) -> Tensor:
        return self.net(x.flatten(1)).view_as(x)


class RowDeepSets(nn.Module):
    """DeepSets over the rows: row ``i``'s costs ``(C_i1 .. C_in)`` in, ``n`` scores out."""

    def __init__(self, n: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = DeepSets(n, n, out_order=1, hidden=hidden, depth=3)

    def forward(self, x: Tensor, mask=None) -> Tensor:
        rows = None if mask is None else mask[0]
        return self.net(x[..., 0], mask=rows)[..., None]


def sinkhorn_reference(costs: Tensor, epsilon: float = 0.01, iterations: int = 20) -> Tensor:
    scores = -costs / epsilon
    for _ in range(iterations):
        scores = scores - scores.logsumexp(2, keepdim=True)
        scores = scores - scores.logsumexp(1, keepdim=True)
    return scores


def train(model: nn.Module, task: AssignmentDataModule, seconds: float, lr: float) -> int:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    start, steps = time.perf_counter(), 0
    model.train()
    while (elapsed := time.perf_counter() - start) < seconds:
        for group in optimizer.param_groups:  # cosine from lr to lr/50 over the budget
            group["lr"] = lr * (0.02 + 0.49 * (1 + math.cos(math.pi * elapsed / seconds)))
        batch = task.train_batches.draw(gen)
        loss = task.loss(model(batch["x"], batch["mask"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    return steps


def score(outputs: Tensor, batch: dict, task: AssignmentDataModule) -> dict[str, float]:
    return {k: float(v.mean()) for k, v in task.evaluate(outputs, batch).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--val-sets", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mixed = AssignmentDataModule(n=10, n_min=5, n_max=20, batch_size=64)
    fixed = AssignmentDataModule(n=10, batch_size=64)
    gen = torch.Generator().manual_seed(2)
    val = {n: mixed.draw(args.val_sets, n, n, gen) for n in args.sizes}
    models = {
        "equivariant": (equivariant(), mixed, 2e-3, args.sizes),
        "mlp": (FlatMLP(10), fixed, 1e-3, [10]),
        "deepsets": (RowDeepSets(10), fixed, 1e-3, [10]),
    }
    print(
        f"# {args.seconds:.0f} s of training per model, {args.threads} threads, "
        f"{args.val_sets} validation matrices per size"
    )
    print(
        f"{'model':<22} {'weights':>8} {'steps':>6} {'n':>4} {'row_acc':>8} {'gap':>7} "
        f"{'solved':>7} {'baseline gap':>13}"
    )
    for name, (model, task, lr, sizes) in models.items():
        weights = sum(p.numel() for p in model.parameters())
        steps = train(model, task, args.seconds, lr)
        model.eval()
        for n in sizes:
            with torch.no_grad():
                m = score(model(val[n]["x"], val[n]["mask"]), val[n], task)
            print(
                f"{name:<22} {weights:>8} {steps:>6} {n:>4} {m['row_acc']:>8.3f} "
                f"{m['gap']:>7.3f} {m['solved']:>7.3f} {m['baseline_gap']:>13.3f}"
            )
    for n in args.sizes:
        m = score(sinkhorn_reference(val[n]["x"][..., 0])[..., None], val[n], mixed)
        print(
            f"{'sinkhorn(-C/0.01), 20':<22} {0:>8} {0:>6} {n:>4} {m['row_acc']:>8.3f} "
            f"{m['gap']:>7.3f} {m['solved']:>7.3f} {m['baseline_gap']:>13.3f}"
        )


if __name__ == "__main__":
    main()
