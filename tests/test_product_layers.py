"""Tensors over several sets: masks per set, complete product bases, layers across axes, and the
equivariance check under a product of symmetric groups."""

from __future__ import annotations

import math

import pytest
import torch

from symlight.check import EquivarianceViolation, assert_equivariant, equivariance_error
from symlight.core.rep import Rep, entry_mask, set_masks
from symlight.models import (
    MLP,
    Activation,
    AxisBroadcast,
    AxisPool,
    ChannelDropout,
    CrossAttention,
    EquivariantModule,
    EquivariantNetwork,
    EquivariantSequential,
    LayerNorm,
    ProductLinear,
    Residual,
    Sinkhorn,
    product_basis,
    product_basis_size,
)
from symlight.symmetry import SetSymmetry, permute, permute_sets, random_permutation


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
SIZES_NM = (3, 4)  # n >= k + k_out for every set above, so each per-set basis is independent


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


@pytest.mark.parametrize(("k", "k_out"), PRODUCT_PAIRS)
def test_product_basis_spans_the_solutions_of_the_commutation_equations(k, k_out):
    solutions = commutation_solutions(k, k_out, SIZES_NM)
    mats = product_matrices(k, k_out, SIZES_NM)
    assert solutions == product_basis_size(k, k_out) == mats.shape[0]
    assert int(torch.linalg.matrix_rank(mats.flatten(1))) == solutions  # independent
    for g in group_generators(SIZES_NM):  # and each one a solution: they span the space
        g_out, g_in = action(g, k_out), action(g, k)
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
@pytest.mark.parametrize(("k", "k_out"), PRODUCT_PAIRS + [((2, 1), (2, 2)), ((0, 2), (2, 0))])
def test_product_layer_mixes_its_basis_maps(k, k_out, pooling):
    """The fast forward (mix, then broadcast) equals mixing the materialised basis maps."""
    torch.manual_seed(0)
    layer = ProductLinear(k, k_out, 3, 2, pooling).double()
    with torch.no_grad():
        layer.bias.normal_()
    sizes = (4, 3)
    x = torch.randn(2, *[n for n, o in zip(sizes, k) for _ in range(o)], 3, dtype=torch.float64)
    masks = (
        torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0]], dtype=torch.bool),
        torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool),
    )
    maps = product_basis(x, masks, sizes, k, k_out, pooling)
    expected = layer.mix(torch.cat(maps, dim=-1))
    ones = torch.ones(2, 1, dtype=torch.float64)
    for b, c in zip(layer.bias, product_basis(ones, masks, sizes, (0, 0), k_out, pooling)):
        expected = expected + b * c
    keep = Rep(2, k_out).mask(masks)
    expected = expected if keep is None else expected * keep
    torch.testing.assert_close(layer(x, masks), expected, atol=1e-12, rtol=0)


# -- every layer over two sets: equivariant under S_n x S_m, padding on both axes ----------------

C_IN = 3
SIZE_PAIRS = [(1, 3), (2, 7), (3, 1), (4, 5), (5, 2), (6, 6), (7, 4)]  # 1 .. 7 on each axis


def spec_net(in_order, out_order, layers):
    return lambda: EquivariantNetwork(C_IN, 2, out_order, layers, in_order=in_order)


PRODUCT_LAYERS = {
    **{
        f"linear{''.join(map(str, k))}-{''.join(map(str, k_out))}-{p}": (
            lambda k=k, k_out=k_out, p=p: ProductLinear(k, k_out, C_IN, 4, p)
        )
        for k, k_out in PRODUCT_PAIRS + [((2, 1), (1, 2))]
        for p in ("sum", "mean", "max")
    },
    "linear11-11-nobias": lambda: ProductLinear((1, 1), (1, 1), C_IN, 4, bias=False),
    **{
        f"pool{''.join(map(str, k))}-set{s}-{r}": (lambda k=k, s=s, r=r: AxisPool(k, s, r, C_IN))
        for k, s in [((1, 1), 1), ((1, 1), 0), ((2, 1), 0), ((1, 2), 1)]
        for r in ("sum", "mean", "max", "min")
    },
    **{
        f"broadcast{''.join(map(str, k))}-set{s}": (lambda k=k, s=s: AxisBroadcast(k, s, C_IN))
        for k, s in [((1, 0), 1), ((0, 1), 0), ((1, 1), 0), ((0, 0), 1)]
    },
    "cross_attention-set1": lambda: CrossAttention(C_IN, 4, (1, 1), 1, heads=2),
    "cross_attention-set0-seeds2": lambda: CrossAttention(C_IN, 2, (1, 1), 0, 2, seeds=2),
    "cross_attention-pairs-nonorm": lambda: CrossAttention(C_IN, 4, (2, 1), 0, 2, 1, False),
    "activation": lambda: Activation("tanh", (1, 1)),
    "mlp": lambda: MLP(C_IN, 4, hidden=5, order=(2, 1)),
    "layer_norm": lambda: LayerNorm(C_IN, (1, 1)),
    "dropout": lambda: ChannelDropout(0.5, (1, 1)),
    "sinkhorn": lambda: Sinkhorn(C_IN, iterations=3, temperature=0.5),
    "sinkhorn-pairs-and-a-set": lambda: Sinkhorn(C_IN, 2, order=(2, 1)),
    "residual": lambda: Residual(
        [ProductLinear((1, 1), (1, 1), C_IN, C_IN), Activation("tanh", (1, 1))]
    ),
    "network-rows-to-columns": spec_net(
        (1, 1),
        (0, 1),
        [
            {"layer": "linear", "channels": 6},
            {"layer": "layer_norm"},
            {"layer": "dropout", "p": 0.3},
            {"layer": "activation", "name": "gelu"},
            {"layer": "cross_attention", "heads": 2},
            {"layer": "broadcast", "set": 1},
            {"layer": "mlp", "hidden": 4},
            {"layer": "linear", "order": [2, 1], "pooling": "max"},
            {"layer": "pool", "set": 0, "reduce": "min"},
            {"layer": "pool", "set": 0},
        ],
    ),
    "network-residual-sinkhorn": spec_net(
        (1, 1),
        (1, 1),
        [
            {"layer": "linear", "channels": 4, "pooling": "max"},
            {"layer": "residual", "layers": [{"layer": "layer_norm"}, {"layer": "linear"}]},
            {"layer": "residual"},
            {"layer": "linear", "channels": 2},
            {"layer": "sinkhorn", "iterations": 2},
        ],
    ),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is several times faster than two fighting over a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def padded_masks(sizes, gen):
    """Per set, four examples: full, one padded, half padded (positions shuffled), none real."""
    masks = []
    for n in sizes:
        real = torch.tensor([n, max(n - 1, 1), max(n // 2, 1), 0])
        mask = torch.arange(n)[None, :] < real[:, None]
        masks.append(permute(mask, random_permutation(4, n, generator=gen), 1))
    masks[0][3] = True  # the last example: real rows, no real column (or set 0 all real)
    return tuple(masks)


def product_input(rep: Rep, sizes, gen):
    shape = [n for n, k in zip(sizes, rep.orders) for _ in range(k)]
    return torch.randn(4, *shape, C_IN, generator=gen, dtype=torch.float64)


def with_garbage(x, keep, gen):
    if keep is None:
        return x
    return torch.where(keep, x, 100 * torch.randn(x.shape, generator=gen, dtype=x.dtype))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list(PRODUCT_LAYERS))
def test_layer_is_equivariant_to_each_sets_permutations_and_ignores_padding(name, train):
    torch.manual_seed(0)
    layer = PRODUCT_LAYERS[name]().double().train(train)
    rep_in = layer.rep_in.with_channels(C_IN)
    inputs = {"x": rep_in.orders} if any(rep_in.orders) else {}  # an invariant does not permute
    symmetry = SetSymmetry(inputs, out_order=layer.rep_out.orders)
    for i, sizes in enumerate(SIZE_PAIRS):
        gen = torch.Generator().manual_seed(i)
        masks = padded_masks(sizes, gen)
        x = with_garbage(product_input(rep_in, sizes, gen), rep_in.mask(masks), gen)
        rep_in.check(x)
        torch.manual_seed(1)
        y = layer(x, masks)
        layer.rep_out.check(y, "output")
        assert torch.isfinite(y).all()
        keep = layer.rep_out.mask(masks)
        if keep is not None:
            assert (y.masked_select(~keep.expand_as(y)) == 0).all()  # padded outputs are zeros
        torch.manual_seed(1)
        y_other = layer(with_garbage(x, rep_in.mask(masks), gen), masks)
        torch.testing.assert_close(y_other, y, atol=1e-10 * max(1.0, y.abs().max().item()), rtol=0)
        batch = {"x": x, "mask": masks}
        result = assert_equivariant(layer, batch, symmetry, num_samples=2, train=train)
        assert result.training == train and len(result.rows) == 6  # 2 generators x 2 sets + 2


def test_permuting_one_axis_by_hand_matches_the_check():
    """The check's action is indexing: rows by one permutation, columns by another."""
    torch.manual_seed(0)
    layer = ProductLinear((1, 1), (1, 1), 1, 1).double()
    x = torch.randn(1, 3, 4, 1, dtype=torch.float64)
    rows, cols = [2, 0, 1], [3, 1, 0, 2]
    y = layer(x)
    torch.testing.assert_close(layer(x[:, rows][:, :, cols]), y[:, rows][:, :, cols])
    perms = (torch.tensor([rows]), torch.tensor([cols]))
    torch.testing.assert_close(permute_sets(x, perms, (1, 1)), x[:, rows][:, :, cols])


def test_layers_build_from_specs_and_mismatches_name_both_layers():
    spec = [
        {"layer": "linear", "order": [1, 0], "channels": 8},
        {"layer": "broadcast", "set": 1},
        {"layer": "cross_attention", "set": 0, "channels": 4, "heads": 2},
    ]
    net = EquivariantNetwork(2, 3, (0, 1), spec, in_order=(1, 1))
    assert [str(m.rep_out) for m in net.layers] == ["8x(1,0)", "8x(1,1)", "4x(0,1)", "3x(0,1)"]
    with pytest.raises(ValueError) as error:
        EquivariantSequential([ProductLinear((1, 1), (1, 0), 2, 8), AxisBroadcast((0, 1), 0, 8)])
    assert str(error.value) == (
        "layer 0 (ProductLinear) returns 8x(1,0) but layer 1 (AxisBroadcast) takes 8x(0,1): "
        "the orders differ"
    )
    with pytest.raises(ValueError, match=r"layer 1 .*: cannot pool over set 1 of 8x\(1,0\)"):
        EquivariantNetwork(2, 1, (1, 0), [spec[0], {"layer": "pool", "set": 1}], in_order=(1, 1))
    with pytest.raises(ValueError, match=r"set must be 0 .. 1 for a rep over 2x\(1,1\), got 2"):
        AxisPool((1, 1), 2, channels=2)


def test_pooling_and_broadcast_across_axes_by_hand():
    x = torch.arange(6.0).view(1, 2, 3, 1)
    cols = torch.tensor([[True, True, False]])
    masks = (torch.ones(1, 2, dtype=torch.bool), cols)
    assert AxisPool((1, 1), 1, "max")(x, masks)[0, :, 0].tolist() == [1.0, 4.0]
    assert AxisPool((1, 1), 0, "sum")(x, masks)[0, :, 0].tolist() == [3.0, 5.0, 0.0]
    lifted = AxisBroadcast((1, 0), 1)(torch.tensor([[[1.0], [2.0]]]), masks)
    assert lifted[0, :, :, 0].tolist() == [[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]]


def test_cross_attention_is_attention_of_each_row_over_its_columns():
    torch.manual_seed(0)
    layer = CrossAttention(2, 4, (1, 1), 1, heads=2, layer_norm=False).double()
    x = torch.randn(1, 3, 5, 2, dtype=torch.float64)
    cols = torch.tensor([[True, False, True, True, False]])
    y = layer(x, (None, cols))
    real = x[:, :, cols[0]]
    for i in range(3):
        query = layer.query(real[:, i].mean(1)) + layer.seeds  # (1, 4)
        expected = layer.attend(query[:, None].expand(1, 1, 4), real[:, i])
        torch.testing.assert_close(y[0, i], expected[0, 0], atol=1e-12, rtol=0)


# -- the check under a product group ---------------------------------------------------------


class FirstColumn(EquivariantModule):
    """Adds the first column to every column: equivariant in the rows, not in the columns."""

    def __init__(self) -> None:
        super().__init__(Rep(1, (1, 1)), Rep(1, (1, 1)))

    def forward(self, x, mask=None):
        return x + x[:, :, :1]


def test_the_check_samples_each_sets_generators_and_names_the_layer_that_breaks():
    net = EquivariantSequential(
        [ProductLinear((1, 1), (1, 1), 1, 1), FirstColumn(), ProductLinear((1, 1), (1, 1), 1, 1)]
    ).double()
    x = torch.randn(3, 4, 5, 1, dtype=torch.float64)
    masks = (torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 5, dtype=torch.bool))
    symmetry = SetSymmetry({"x": (1, 1)}, out_order=(1, 1))
    result = equivariance_error(net, {"x": x, "mask": masks}, symmetry, num_samples=1)
    errors = {row.element: row.max_abs_error for row in result.rows}
    assert list(errors) == [
        "transposition of set 0",
        "cycle of set 0",
        "transposition of set 1",
        "cycle of set 1",
        "random 1",
    ]
    assert errors["transposition of set 0"] < 1e-12 and errors["cycle of set 0"] < 1e-12
    assert errors["transposition of set 1"] > 1e-3 and errors["cycle of set 1"] > 1e-3
    with pytest.raises(EquivarianceViolation) as error:
        assert_equivariant(net, {"x": x, "mask": masks}, symmetry)
    message = str(error.value)
    assert "first non-equivariant submodule: FirstColumn 'layers.1', order-(1,1) output" in message
    assert "] x [" in message  # the element: one permutation per set


def test_the_check_samples_a_declared_group_on_one_set_and_s_n_on_the_other():
    symmetry = SetSymmetry({"x": (1, 1)}, out_order=(1, 1), group=("cyclic(4)", None))
    x = torch.randn(2, 4, 3, 1, dtype=torch.float64)
    layer = ProductLinear((1, 1), (1, 1), 1, 1).double()
    result = equivariance_error(layer, {"x": x}, symmetry, num_samples=1)
    assert [row.element for row in result.rows] == [
        "generator 1 of set 0",
        "transposition of set 1",
        "cycle of set 1",
        "random 1",
    ]
    assert result.ok()
    rolled = result.rows[0].perm[0][0].tolist()
    assert rolled in ([1, 2, 3, 0], [3, 0, 1, 2])  # a rotation of the 4 rows


def test_sinkhorn_makes_the_real_block_doubly_stochastic():
    torch.manual_seed(0)
    layer = Sinkhorn(2, iterations=50, temperature=2.0).double()
    x = torch.randn(2, 5, 5, 2, dtype=torch.float64)
    real = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0]], dtype=torch.bool)
    y = layer(x, (real, real))
    for b in range(2):
        block = y[b][real[b]][:, real[b]].exp()
        torch.testing.assert_close(block.sum(0), torch.ones_like(block.sum(0)))  # columns: exact
        torch.testing.assert_close(block.sum(1), torch.ones_like(block.sum(1)), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="has none"):
        Sinkhorn(2, order=(0, 0))


def test_residual_adds_its_block_and_keeps_the_rep():
    torch.manual_seed(0)
    block = [ProductLinear((1, 1), (1, 1), 3, 3), Activation("relu", (1, 1))]
    layer = Residual(block)
    x = torch.randn(2, 3, 4, 3)
    torch.testing.assert_close(layer(x), x + block[1](block[0](x)))
    with pytest.raises(ValueError, match=r"takes 3x\(1,1\) and returns 3x\(1,0\)"):
        Residual([ProductLinear((1, 1), (1, 0), 3, 3)])
