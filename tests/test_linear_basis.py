"""The bases of EquivariantLinear are complete: their span has one dimension per S_n orbit."""

from __future__ import annotations

import itertools

import pytest
import torch

from symlight.models import BASES, EquivariantLinear, basis_size

ORDER_PAIRS = [(k, m) for k in range(3) for m in range(3)]
BELL = {0: 1, 1: 1, 2: 2, 3: 5, 4: 15}


def orbit_count(n: int, length: int) -> int:
    """Orbits of S_n on index tuples of ``length``: their distinct equality patterns."""
    patterns = set()
    for idx in itertools.product(range(n), repeat=length):
        first: dict[int, int] = {}
        patterns.add(tuple(first.setdefault(i, len(first)) for i in idx))
    return len(patterns)


def basis_matrices(k: int, m: int, n: int, pooling: str, mask=None) -> torch.Tensor:
    """Each basis map as an explicit ``n^m x n^k`` matrix, from its images of unit tensors."""
    if k == 0:
        units = torch.ones(1, 1, dtype=torch.float64)
    else:
        units = torch.eye(n**k, dtype=torch.float64).view(n**k, *([n] * k), 1)
    mask = torch.ones(units.shape[0], n, dtype=torch.bool) if mask is None else mask
    maps = BASES[(k, m)](units, mask.expand(units.shape[0], -1), pooling, n)
    return torch.stack([y.reshape(units.shape[0], -1).T for y in maps])


@pytest.mark.parametrize(("k", "m"), ORDER_PAIRS)
def test_basis_size_is_bell_number(k: int, m: int) -> None:
    assert basis_size(k, m) == BELL[k + m]


def test_orbit_counts() -> None:
    assert [orbit_count(n, 4) for n in (1, 2, 3, 4, 5)] == [1, 8, 14, 15, 15]
    assert [orbit_count(n, 3) for n in (1, 2, 3, 4)] == [1, 4, 5, 5]


@pytest.mark.parametrize("pooling", ["sum", "mean"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(("k", "m"), ORDER_PAIRS)
def test_basis_spans_all_equivariant_maps(k: int, m: int, n: int, pooling: str) -> None:
    mats = basis_matrices(k, m, n, pooling)
    rank = torch.linalg.matrix_rank(mats.flatten(1)).item()
    assert rank == orbit_count(n, k + m)


@pytest.mark.parametrize(("k", "m"), ORDER_PAIRS)
def test_basis_maps_commute_with_permutations(k: int, m: int) -> None:
    n = 4
    mats = basis_matrices(k, m, n, "mean")
    for perm in itertools.permutations(range(n)):
        p = torch.eye(n, dtype=torch.float64)[list(perm)]
        p_in = _kron_power(p, k)
        p_out = _kron_power(p, m)
        torch.testing.assert_close(p_out @ mats @ p_in.T, mats, atol=1e-12, rtol=0)


def _kron_power(p: torch.Tensor, order: int) -> torch.Tensor:
    out = torch.ones(1, 1, dtype=p.dtype)
    for _ in range(order):
        out = torch.kron(out, p)
    return out


@pytest.mark.parametrize(("k", "m"), ORDER_PAIRS)
def test_masked_basis_is_the_basis_of_the_real_elements(k: int, m: int) -> None:
    """With 3 real elements out of 5, the real block of each map is that of a set of 3."""
    n, real = 5, torch.tensor([True, False, True, True, False])
    mats = basis_matrices(k, m, n, "mean", real[None])
    idx = real.nonzero().flatten()
    rows = _real_entries(idx, n, m)
    cols = _real_entries(idx, n, k)
    block = mats[:, rows][:, :, cols]
    torch.testing.assert_close(block, basis_matrices(k, m, 3, "mean"), atol=1e-12, rtol=0)
    # padded inputs never reach real outputs (padded outputs are zeroed by the layer itself)
    padded_in = torch.ones(n**k, dtype=torch.bool)
    padded_in[cols] = False
    assert (mats[:, rows][:, :, padded_in] == 0).all()


def _real_entries(idx: torch.Tensor, n: int, order: int) -> torch.Tensor:
    if order == 0:
        return torch.tensor([0])
    flat = [
        sum(i * n ** (order - 1 - a) for a, i in enumerate(t))
        for t in itertools.product(idx.tolist(), repeat=order)
    ]
    return torch.tensor(flat)


def slow_pairs_to_pairs(x: torch.Tensor, w: list[float], mean: bool) -> torch.Tensor:
    """The 15 maps of pairs -> pairs written out with loops, for one set and one channel."""
    n = x.shape[0]
    s1 = n if mean else 1  # normaliser of a pool over one index
    s2 = n * n if mean else 1  # over two
    y = torch.zeros(n, n, dtype=x.dtype)
    for i in range(n):
        for j in range(n):
            row_i = sum(x[i, b] for b in range(n)) / s1
            row_j = sum(x[j, b] for b in range(n)) / s1
            col_i = sum(x[a, i] for a in range(n)) / s1
            col_j = sum(x[a, j] for a in range(n)) / s1
            trace = sum(x[a, a] for a in range(n)) / s1
            total = sum(x[a, b] for a in range(n) for b in range(n)) / s2
            value = w[0] * x[i, j] + w[1] * x[j, i]
            if i == j:
                value += w[2] * x[i, i] + w[3] * row_i + w[4] * col_i + w[5] * trace
                value += w[6] * total
            value += w[7] * x[i, i] + w[8] * x[j, j] + w[9] * row_i + w[10] * row_j
            value += w[11] * col_i + w[12] * col_j + w[13] * trace + w[14] * total
            y[i, j] = value
    return y


@pytest.mark.parametrize("pooling", ["sum", "mean"])
def test_pairs_to_pairs_matches_slow_reference(pooling: str) -> None:
    torch.manual_seed(0)
    layer = EquivariantLinear(2, 2, 1, 1, pooling, bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    w = layer.mix.weight[0].tolist()
    x = torch.randn(1, 5, 5, 1, dtype=torch.float64)
    expected = slow_pairs_to_pairs(x[0, :, :, 0], w, pooling == "mean")
    expected += layer.bias[1, 0] + torch.eye(5, dtype=torch.float64) * layer.bias[0, 0]
    torch.testing.assert_close(layer(x)[0, :, :, 0], expected, atol=1e-12, rtol=0)


def test_mean_is_size_normalised() -> None:
    """A mean-pooled layer gives the same real outputs for a set alone and padded."""
    torch.manual_seed(0)
    layer = EquivariantLinear(2, 1, 2, 3, "mean").double()
    x = torch.randn(1, 6, 6, 2, dtype=torch.float64)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    torch.testing.assert_close(layer(x, mask)[:, :4], layer(x[:, :4, :4]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
@pytest.mark.parametrize(("k", "m"), ORDER_PAIRS)
def test_layer_mixes_its_basis_maps(k: int, m: int, pooling: str) -> None:
    """The fast forward (mix, then broadcast) equals mixing the materialised basis maps."""
    torch.manual_seed(0)
    layer = EquivariantLinear(k, m, 3, 2, pooling).double()
    with torch.no_grad():
        layer.bias.normal_()
    n = 5
    x = torch.randn((2,) + (n,) * k + (3,), dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, False, True, True, False]])
    maps = BASES[(k, m)](x, mask, pooling, n)
    expected = layer.mix(torch.cat(maps, dim=-1))
    ones = torch.ones(2, 1, dtype=torch.float64)
    for b, c in zip(layer.bias, BASES[(0, m)](ones, mask, pooling, n)):
        expected = expected + b * c
    if m > 0:
        keep = mask if m == 1 else mask[:, :, None] & mask[:, None, :]
        expected = expected * keep.view(*keep.shape, 1)
    torch.testing.assert_close(layer(x, mask), expected, atol=1e-12, rtol=0)
