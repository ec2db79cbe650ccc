"""Tensors over several sets: masks per set, complete product bases, layers across axes, and the
equivariance check under a product of symmetric groups."""

from __future__ import annotations

import math

import pytest
import torch

from symlight.core.rep import Rep, entry_mask, set_masks
from symlight.models.product_linear import ProductLinear, product_basis, product_basis_size


def test_entry_mask_over_two_sets_is_the_and_of_each_sets_mask():
    rows = torch.tensor([[True, True, False], [True, False, False]])
    cols = torch.tensor([[True, False], [True, True]])
    keep = entry_mask((rows, cols), (1, 1), trailing=0)
    assert keep.shape == (2, 3, 2)
    for b in range(2):
        for i in range(3):
            for j in range(2):
                assert keep[b, i, j] == (rows[b, i] and cols[b, j])
    pairs_then_cols = entry_mask((rows, cols), (2, 1))
    assert pairs_then_cols.shape == (2, 3, 3, 2, 1)
    expected = rows[:, :, None, None] & rows[:, None, :, None] & cols[:, None, None, :]
    assert torch.equal(pairs_then_cols[..., 0], expected)
    assert entry_mask((rows, cols), (0, 1), trailing=0).tolist() == cols.tolist()
    assert entry_mask((rows, cols), (0, 0)) is None
    assert entry_mask((None, cols), (1, 1), trailing=0).shape == (2, 1, 2)  # rows all real


def test_each_set_has_its_own_size_and_mask():
    rep = Rep(4, (1, 2))
    assert (rep.dims(0), rep.dims(1)) == ((1,), (2, 3))
    rep.check(torch.zeros(2, 5, 3, 3, 4))
    with pytest.raises(ValueError, match="square over its set axes of set 1"):
        rep.check(torch.zeros(2, 5, 3, 4, 4))
    rows, cols = torch.ones(2, 5, dtype=torch.bool), torch.tensor([[True, True, False]] * 2)
    y = rep.zero_padding(torch.ones(2, 5, 3, 3, 4), (rows, cols))
    assert y.sum() == 2 * 5 * 4 * 4  # 5 rows x 2 x 2 real column pairs x 4 channels, per batch
    with pytest.raises(ValueError, match="one \\(B, n\\) mask per set"):
        set_masks(rows, 2)
    with pytest.raises(ValueError, match="one mask per set, got 1"):
        rep.mask((rows,))


# -- complete bases: the commutation equations of S_n x S_m ------------------------------------

PRODUCT_PAIRS = [
    ((1, 1), (1, 1)),
    ((1, 1), (1, 0)),
    ((2, 0), (1, 1)),
    ((1, 1), (2, 1)),
    ((1, 1), (0, 0)),
    ((0, 1), (1, 1)),
    ((1, 0), (1, 1)),
]
SIZES_NM = (3, 4)  # n >= k + l for every set above, so each per-set basis is independent


def perm_matrix(perm: list[int]) -> torch.Tensor:
    return torch.eye(len(perm), dtype=torch.float64)[perm]


def action(mats: list[torch.Tensor], orders) -> torch.Tensor:
    """The matrix of one permutation per set acting on a flattened tensor of ``orders``."""
    out = torch.ones(1, 1, dtype=torch.float64)
    for p, k in zip(mats, orders):
        for _ in range(k):
            out = torch.kron(out, p)
    return out


def group_generators(sizes) -> list[list[torch.Tensor]]:
    """Generators of S_n x S_m: a transposition and a cycle of one set, the identity elsewhere."""
    ids = [torch.eye(n, dtype=torch.float64) for n in sizes]
    gens = []
    for s, n in enumerate(sizes):
        for perm in ([1, 0, *range(2, n)], [*range(1, n), 0]):
            gens.append([*ids[:s], perm_matrix(perm), *ids[s + 1 :]])
    return gens


def commutation_solutions(in_orders, out_orders, sizes) -> int:
    """Dimension of {W : g_out W g_in^-1 = W for every generator g} (row-major vec(W))."""
    eqs = []
    for g in group_generators(sizes):
        k = torch.kron(action(g, out_orders), action(g, in_orders))
        eqs.append(k - torch.eye(k.shape[0], dtype=torch.float64))
    system = torch.cat(eqs)
    return system.shape[1] - int(torch.linalg.matrix_rank(system))


def product_matrices(in_orders, out_orders, sizes, pooling="sum") -> torch.Tensor:
    """Each product basis map as an explicit ``N_out x N_in`` matrix, from unit tensors."""
    shape_in = [n for n, k in zip(sizes, in_orders) for _ in range(k)]
    units_count = math.prod(shape_in)
    units = torch.eye(units_count, dtype=torch.float64).view(units_count, *shape_in, 1)
    masks = [torch.ones(units_count, n, dtype=torch.bool) for n in sizes]
    maps = product_basis(units, masks, sizes, in_orders, out_orders, pooling)
    return torch.stack([y.reshape(units_count, -1).T for y in maps])


@pytest.mark.parametrize(("k", "l"), PRODUCT_PAIRS)
def test_product_basis_spans_the_solutions_of_the_commutation_equations(k, l):
    solutions = commutation_solutions(k, l, SIZES_NM)
    mats = product_matrices(k, l, SIZES_NM)
    assert solutions == product_basis_size(k, l) == mats.shape[0]
    assert int(torch.linalg.matrix_rank(mats.flatten(1))) == solutions  # independent
    for g in group_generators(SIZES_NM):  # and each one a solution: they span the space
        g_out, g_in = action(g, l), action(g, k)
        torch.testing.assert_close(g_out @ mats @ g_in.T, mats, atol=1e-12, rtol=0)


def test_the_exchangeable_matrix_layer_has_hartfords_four_terms():
    assert product_basis_size((1, 1), (1, 1)) == 4
    assert commutation_solutions((1, 1), (1, 1), (2, 5)) == 4
    torch.manual_seed(0)
    layer = ProductLinear((1, 1), (1, 1), 2, 3).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 5, 2, dtype=torch.float64)
    rows = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    cols = torch.tensor([[1, 1, 1, 1, 0], [1, 0, 1, 1, 1]], dtype=torch.bool)
    y = layer(x, (rows, cols))
    expected = torch.zeros_like(y)
    w = layer.mix.weight.split(2, dim=1)  # x_ij, row pool, column pool, total pool
    for b in range(2):
        real_i, real_j = rows[b].nonzero().flatten(), cols[b].nonzero().flatten()
        block = x[b][real_i][:, real_j]
        for a, i in enumerate(real_i):
            for c, j in enumerate(real_j):
                expected[b, i, j] = (
                    w[0] @ block[a, c]
                    + w[1] @ block[a].mean(0)
                    + w[2] @ block[:, c].mean(0)
                    + w[3] @ block.mean((0, 1))
                    + layer.bias[0]
                )
    torch.testing.assert_close(y, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
@pytest.mark.parametrize(("k", "l"), PRODUCT_PAIRS + [((2, 1), (2, 2)), ((0, 2), (2, 0))])
def test_product_layer_mixes_its_basis_maps(k, l, pooling):
    """The fast forward (mix, then broadcast) equals mixing the materialised basis maps."""
    torch.manual_seed(0)
    layer = ProductLinear(k, l, 3, 2, pooling).double()
    with torch.no_grad():
        layer.bias.normal_()
    sizes = (4, 3)
    x = torch.randn(2, *[n for n, o in zip(sizes, k) for _ in range(o)], 3, dtype=torch.float64)
    masks = (
        torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0]], dtype=torch.bool),
        torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool),
    )
    maps = product_basis(x, masks, sizes, k, l, pooling)
    expected = layer.mix(torch.cat(maps, dim=-1))
    ones = torch.ones(2, 1, dtype=torch.float64)
    for b, c in zip(layer.bias, product_basis(ones, masks, sizes, (0, 0), l, pooling)):
        expected = expected + b * c
    keep = Rep(2, l).mask(masks)
    expected = expected if keep is None else expected * keep
    torch.testing.assert_close(layer(x, masks), expected, atol=1e-12, rtol=0)
