"""The exchangeable-matrix layer, ``ProductLinear((1, 1), (1, 1))``, against two references.

Forward + backward time of one layer on a batch of ``n x n`` matrices (all entries real, the masks
passed), in the same run, against

- **hartford**: the layer written out as Hartford et al. 2018 do: four weight matrices and three
  explicit masked mean pools (over rows, over columns, over both), broadcast and summed;
- **dense**: the same linear map as one dense ``(n·m) x (n·m)`` matrix per pair of channels, built
  from the Kronecker products of the per-set basis matrices (``I`` and ``11ᵀ/n`` on each set) and
  trained as a dense parameter. Its weight has ``(n·m)^2 · C^2`` entries: it fits at ``n = 32``
  and not beyond (the script says how much it would need).

The three compute the same function: at the first size the script checks that their outputs
agree. Ratios are the median time of each reference over ProductLinear's (above 1: ProductLinear
is faster).

    python benchmarks/product_layer.py                 # n = m = 32, 128, 512
    python benchmarks/product_layer.py --sizes 32 64   # other sizes
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import Tensor, nn

from symlight.models import ProductLinear

DENSE_LIMIT_BYTES = 2**31
"""The largest dense weight the script builds (2 GiB); larger ones are reported as not fitting."""


class Hartford(nn.Module):
    """Hartford et al.'s exchangeable-matrix layer, written out: ``y = x W1 + rows(x) W2 +
    cols(x) W3 + all(x) W4 + b`` with masked mean pools.
    """

    def __init__(self, layer: ProductLinear) -> None:
        super().__init__()
        c = layer.in_channels
        # ProductLinear's terms, first set slowest: x, pool over columns, pool over rows, both
        w = layer.mix.weight.detach().split(c, dim=1)
        self.w = nn.ParameterList([nn.Parameter(t.T.contiguous()) for t in w])
        self.b = nn.Parameter(layer.bias.detach()[0].clone())

    def forward(self, x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        keep = (rows[:, :, None] & cols[:, None, :])[..., None].to(x.dtype)
        x = x * keep
        n_rows = rows.sum(1).to(x.dtype)[:, None, None, None]
        n_cols = cols.sum(1).to(x.dtype)[:, None, None, None]
        over_cols = x.sum(2, keepdim=True) / n_cols  # (B, n, 1, C): each row's mean
        over_rows = x.sum(1, keepdim=True) / n_rows  # (B, 1, m, C): each column's mean
        total = over_rows.sum(2, keepdim=True) / n_cols  # (B, 1, 1, C)
        w1, w2, w3, w4 = self.w
        y = x @ w1 + over_cols @ w2 + over_rows @ w3 + total @ w4 + self.b
        return y * keep


class Dense(nn.Module):
    """The same map as one dense ``(n·m) x (n·m)`` matrix per pair of channels."""

    def __init__(self, layer: ProductLinear, n: int, m: int) -> None:
        super().__init__()
        eye_n, eye_m = torch.eye(n), torch.eye(m)
        mean_n, mean_m = torch.full((n, n), 1 / n), torch.full((m, m), 1 / m)
        basis = [  # the Kronecker products of the per-set maps, in ProductLinear's order
            torch.kron(eye_n, eye_m),
            torch.kron(eye_n, mean_m),
            torch.kron(mean_n, eye_m),
            torch.kron(mean_n, mean_m),
        ]
        c_in, c_out = layer.in_channels, layer.out_channels
        mix = layer.mix.weight.detach().view(c_out, 4, c_in)
        with torch.no_grad():
            weight = sum(torch.einsum("oc,lk->lokc", mix[:, t], b) for t, b in enumerate(basis))
        self.weight = nn.Parameter(weight.reshape(n * m * c_out, n * m * c_in))
        self.b = nn.Parameter(layer.bias.detach()[0].clone())
        self.shape = (n, m, c_out)

    def forward(self, x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        y = x.reshape(x.shape[0], -1) @ self.weight.T
        return y.view(x.shape[0], *self.shape) + self.b


def dense_bytes(n: int, channels: int) -> int:
    return (n * n * channels) ** 2 * 4


def time_step(module: nn.Module, x: Tensor, masks: tuple[Tensor, Tensor], repeats: int) -> float:
    """Median seconds of one forward + backward, after one warm-up step."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x, *masks).square().mean().backward()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Ours(nn.Module):
    def __init__(self, layer: ProductLinear) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        return self.layer(x, (rows, cols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"# ProductLinear((1,1) -> (1,1)) forward+backward, batch {args.batch}, {args.channels} "
        f"channels, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"{'n = m':>6} {'ours ms':>9} {'hartford ms':>12} {'dense ms':>10} "
        f"{'hartford/ours':>14} {'dense/ours':>11}"
    )
    for i, n in enumerate(args.sizes):
        layer = ProductLinear((1, 1), (1, 1), args.channels, args.channels)
        with torch.no_grad():
            layer.bias.normal_()
        x = torch.randn(args.batch, n, n, args.channels, requires_grad=True)
        masks = (torch.ones(args.batch, n, dtype=torch.bool),) * 2
        ours, hartford = Ours(layer), Hartford(layer)
        dense = Dense(layer, n, n) if dense_bytes(n, args.channels) <= DENSE_LIMIT_BYTES else None
        if i == 0:  # the three compute the same function
            with torch.no_grad():
                y = ours(x, *masks)
                torch.testing.assert_close(hartford(x, *masks), y, atol=1e-4, rtol=1e-4)
                if dense is not None:
                    torch.testing.assert_close(dense(x, *masks), y, atol=1e-4, rtol=1e-4)
        t_ours = time_step(ours, x, masks, args.repeats)
        t_hart = time_step(hartford, x, masks, args.repeats)
        t_dense = time_step(dense, x, masks, args.repeats) if dense is not None else None
        dense_ms = f"{t_dense * 1e3:>10.2f}" if t_dense else f"{'no fit':>10}"
        dense_ratio = (
            f"{t_dense / t_ours:>11.2f}"
            if t_dense
            else (f"{dense_bytes(n, args.channels) / 2**30:>8.0f}GiB")
        )
        print(
            f"{n:>6} {t_ours * 1e3:>9.2f} {t_hart * 1e3:>12.2f} {dense_ms} "
            f"{t_hart / t_ours:>14.2f} {dense_ratio}"
        )
        del dense
    print("# no fit: the dense weight would need the GiB shown (float32), over the 2 GiB limit")


if __name__ == "__main__":
    main()
