"""Every layer, order pair, pooling and preset is equivariant, honours masks and never NaNs."""

from __future__ import annotations

import pytest
import torch

from symlight.core.rep import Rep
from symlight.models import (
    ISAB,
    MLP,
    PMA,
    PRESETS,
    SAB,
    Activation,
    ChannelDropout,
    EquivariantLinear,
    EquivariantNetwork,
    LayerNorm,
    PairwiseComparison,
    PairwiseLift,
    PairwiseReduce,
    PairwiseSimilarity,
    build_layer,
)
from symlight.symmetry import generators, permute, random_permutation

SIZES = (1, 2, 3, 4, 7, 16)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is several times faster than two fighting over a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


C_IN = 3

ORDER_PAIRS = [(k, m) for k in range(3) for m in range(3)]

LAYERS = {
    **{
        f"linear{k}{m}-{p}": (lambda k=k, m=m, p=p: EquivariantLinear(k, m, C_IN, 4, p))
        for k, m in ORDER_PAIRS
        for p in ("sum", "mean", "max")
    },
    "linear22-nobias": lambda: EquivariantLinear(2, 2, C_IN, 4, "mean", bias=False),
    **{f"mlp{o}": (lambda o=o: MLP(C_IN, 4, hidden=5, depth=3, order=o)) for o in range(3)},
    **{f"layernorm{o}": (lambda o=o: LayerNorm(C_IN, o)) for o in range(3)},
    **{f"dropout{o}": (lambda o=o: ChannelDropout(0.5, o)) for o in range(3)},
    **{f"activation{o}": (lambda o=o: Activation("tanh", o)) for o in range(3)},
    "lift": lambda: PairwiseLift(C_IN, 4, hidden=5),
    "lift-depth1": lambda: PairwiseLift(C_IN, 4, depth=1),
    "similarity": lambda: PairwiseSimilarity(C_IN, 2, dim=3, scale=-4.0),
    **{f"reduce-{r}": (lambda r=r: PairwiseReduce(r)) for r in ("sum", "mean", "max", "min")},
    **{
        f"compare-{r}-{c}": (lambda r=r, c=c: PairwiseComparison(C_IN, 4, 5, 2, "relu", r, c))
        for r in ("sum", "mean", "max", "min")
        for c in (None, 2)
    },
    "sab": lambda: SAB(C_IN, 4, heads=2),
    "sab-nonorm": lambda: SAB(C_IN, 4, heads=2, layer_norm=False),
    "isab": lambda: ISAB(C_IN, 4, heads=2, inducing=3),
    "pma": lambda: PMA(C_IN, 4, heads=2, seeds=2),
    **{
        f"{name}-out{o}": (lambda cls=cls, o=o: cls(C_IN, 2, o))
        for name, cls in PRESETS.items()
        for o in (0, 1)
    },
    "PairwiseNet-out2": lambda: PRESETS["PairwiseNet"](C_IN, 2, 2, hidden=6),
    "PairwiseNet-chunked": lambda: PRESETS["PairwiseNet"](C_IN, 2, 1, pair_layers=0, chunk_size=3),
    "SetTransformer-isab": lambda: PRESETS["SetTransformer"](C_IN, 2, 0, 8, 2, inducing=4),
    **{
        f"spec-{spec['layer']}": (lambda spec=spec, k=k: build_layer(spec, rep_in=Rep(C_IN, k)))
        for spec, k in [
            ({"layer": "linear", "order": 2, "channels": 3}, 1),
            ({"layer": "activation", "name": "silu"}, 2),
            ({"layer": "mlp", "channels": 3, "hidden": 4}, 0),
            ({"layer": "layer_norm"}, 2),
            ({"layer": "dropout", "p": 0.4}, 1),
            ({"layer": "lift", "hidden": 4}, 1),
            ({"layer": "reduce", "reduce": "mean"}, 2),
            ({"layer": "compare", "channels": 2, "hidden": 4, "chunk_size": 2}, 1),
            ({"layer": "similarity", "dim": 2}, 1),
            ({"layer": "sab", "heads": 1}, 1),
            ({"layer": "isab", "heads": 1, "inducing": 2}, 1),
            ({"layer": "pma", "heads": 1, "seeds": 2}, 1),
        ]
    },
    "network-all-layers": lambda: EquivariantNetwork(
        C_IN,
        2,
        0,
        [
            {"layer": "mlp", "channels": 6, "hidden": 5},
            {"layer": "layer_norm"},
            {"layer": "dropout", "p": 0.3},
            {"layer": "sab", "channels": 4, "heads": 2},
            {"layer": "isab", "heads": 2, "inducing": 2},
            {"layer": "compare", "channels": 5, "chunk_size": 2},
            {"layer": "linear", "order": 2, "channels": 4, "pooling": "max"},
            {"layer": "activation", "name": "gelu"},
            {"layer": "linear", "order": 0, "pooling": "sum"},
            {"layer": "linear", "order": 2},
            {"layer": "reduce", "reduce": "min"},
            {"layer": "lift", "hidden": 4},
            {"layer": "reduce", "reduce": "max"},
            {"layer": "similarity", "channels": 4, "dim": 2},
            {"layer": "dropout"},
            {"layer": "reduce", "reduce": "mean"},
            {"layer": "pma", "heads": 2},
        ],
    ),
}


def make_input(order: int, n: int, masked: bool, gen: torch.Generator):
    """A float64 batch whose padded entries hold large random garbage."""
    sizes = [n, max(n - 1, 1), max(n // 2, 1), 0] if masked else [n, n]
    batch = len(sizes)
    x = torch.randn((batch,) + (n,) * order + (C_IN,), generator=gen, dtype=torch.float64)
    mask = torch.arange(n)[None, :] < torch.tensor(sizes)[:, None]
    if masked:  # shuffle the padding positions too: padding need not come last
        mask = permute(mask, random_permutation(batch, n, generator=gen), 1)
    return x, mask


def garbage(x: torch.Tensor, mask: torch.Tensor, order: int, gen: torch.Generator):
    """``x`` with every padded entry replaced by a fresh random value."""
    if order == 0:
        return x
    keep = mask if order == 1 else mask[:, :, None] & mask[:, None, :]
    noise = 100 * torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return torch.where(keep[..., None], x, noise)


def run(layer, x, mask, seed=0):
    torch.default_generator.manual_seed(seed)  # dropout draws the same channels in both runs
    return layer(x, mask)


def assert_equivariant(layer, n: int, masked: bool, train: bool, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    layer = layer.double().train(train)
    k, m = int(layer.in_order), int(layer.out_order)
    x, mask = make_input(k, n, masked, gen)
    x = garbage(x, mask, k, gen)
    arg_mask = mask if masked or k == 0 else None
    layer.rep_in.check(x)
    y = run(layer, x, arg_mask)
    assert torch.isfinite(y).all()
    layer.rep_out.check(y, "output")  # the output is a tensor of the rep the layer declares
    scale = max(1.0, y.abs().max().item())
    tol = 1e-10 * scale

    # padded entries: garbage never leaks into real outputs, padded outputs are exactly zero
    if masked:
        y_other = run(layer, garbage(x, mask, k, gen), mask)
        torch.testing.assert_close(y_other, y, atol=tol, rtol=0)
        if m > 0:
            keep = mask if m == 1 else mask[:, :, None] & mask[:, None, :]
            assert (y[~keep] == 0).all()

    batch = x.shape[0]
    perms = [random_permutation(batch, n, arg_mask, gen), random_permutation(batch, n, None, gen)]
    perms += list(generators(batch, n, arg_mask))
    for perm in perms:
        pm = None if arg_mask is None else permute(arg_mask, perm, 1)
        y_perm = run(layer, permute(x, perm, k), pm)
        torch.testing.assert_close(y_perm, permute(y, perm, m), atol=tol, rtol=0)

    # gradients stay finite, fully padded sets included
    layer.zero_grad()
    run(layer, x.clone().requires_grad_(), arg_mask).square().sum().backward()
    for p in layer.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_equivariant(name: str, masked: bool, train: bool) -> None:
    torch.manual_seed(0)
    layer = LAYERS[name]()
    for i, n in enumerate(SIZES):
        assert_equivariant(layer, n, masked, train, seed=i)


def test_dropout_drops_whole_channels_per_set() -> None:
    layer = ChannelDropout(0.5, 1).train()
    y = layer(torch.ones(4, 6, 32))
    assert (y == y[:, :1]).all()  # the same channels are dropped for every element of a set
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(layer.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


def test_chunked_comparison_matches_unchunked() -> None:
    torch.manual_seed(0)
    full = PairwiseComparison(2, 3, 8, 3, "relu", "max").double()
    chunked = PairwiseComparison(2, 3, 8, 3, "relu", "max", chunk_size=3).double()
    chunked.load_state_dict(full.state_dict())
    x = torch.randn(2, 10, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(10)[None] < torch.tensor([[10], [7]])
    y_full, y_chunked = full(x, mask), chunked(x, mask)
    torch.testing.assert_close(y_chunked, y_full, atol=1e-12, rtol=0)
    (g_full,) = torch.autograd.grad(y_full.sum(), x)
    (g_chunked,) = torch.autograd.grad(y_chunked.sum(), x)
    torch.testing.assert_close(g_chunked, g_full, atol=1e-12, rtol=0)
    for a, b in zip(full.parameters(), chunked.parameters()):
        (grad_a,) = torch.autograd.grad(full(x, mask).sum(), a)
        (grad_b,) = torch.autograd.grad(chunked(x, mask).sum(), b)
        torch.testing.assert_close(grad_b, grad_a, atol=1e-12, rtol=0)


def test_lift_is_mlp_of_pair_and_difference() -> None:
    torch.manual_seed(0)
    lift = PairwiseLift(2, 3, hidden=4).double()
    x = torch.randn(1, 5, 2, dtype=torch.float64)
    y = lift(x)
    for i in range(5):
        for j in range(5):
            xi, xj = x[0, i], x[0, j]
            h = lift.mlp.hidden(lift.mlp.input(torch.cat([xi, xj, xi - xj])))
            torch.testing.assert_close(y[0, i, j], h, atol=1e-12, rtol=0)


def test_attention_scales_by_head_dim() -> None:
    torch.manual_seed(0)
    sab = SAB(8, 8, heads=4, layer_norm=False).double()
    att = sab.mab.attention
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    q = att.q(x).view(1, 5, 4, 2).transpose(1, 2)
    k = att.k(x).view(1, 5, 4, 2).transpose(1, 2)
    v = att.v(x).view(1, 5, 4, 2).transpose(1, 2)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2**0.5, dim=-1)
    expected = att.out((w @ v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(att(x, x), expected, atol=1e-12, rtol=0)


def test_similarity_is_scaled_cosine_of_projections() -> None:
    torch.manual_seed(0)
    layer = PairwiseSimilarity(3, 2, dim=4, scale=-5.0).double()
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    y = layer(x)
    w = layer.project.weight.view(2, 4, 3)
    for h in range(2):
        z = x[0] @ w[h].T
        expected = -5.0 * torch.nn.functional.cosine_similarity(z[:, None], z[None], dim=-1)
        torch.testing.assert_close(y[0, :, :, h], expected, atol=1e-12, rtol=0)
    # bounded by the scale whatever the size of the inputs
    assert layer(1e6 * x).abs().max() <= 5.0 + 1e-9


def test_mean_similarity_picks_the_odd_element() -> None:
    """Nine copies of one direction and one orthogonal vector: the odd one scores highest."""
    layer = PairwiseSimilarity(2, 1, dim=2, scale=-10.0).double()
    with torch.no_grad():
        layer.project.weight.copy_(torch.eye(2, dtype=torch.float64))
    x = torch.tensor([[1.0, 0.1]] * 9 + [[0.0, 1.0]], dtype=torch.float64)[None]
    x = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    logits = PairwiseReduce("mean")(layer(x))[0, :, 0]
    assert logits.argmax().item() == 9


def test_fully_padded_rows_give_zero_attention() -> None:
    att = SAB(4, 4, heads=2).mab.attention.double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out = att(x, x, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], att.out.bias.expand(3, -1))


def test_pooling_by_attention_of_an_empty_set_is_zero() -> None:
    pma = PMA(4, 3, heads=1, seeds=2).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out = pma(x, mask)
    assert (out[1] == 0).all()
    assert (out[0] != 0).any()


def test_repr_shows_reps_and_weights() -> None:
    assert repr(EquivariantLinear(2, 1, 3, 4)) == (
        "EquivariantLinear(3x2 -> 4x1 | 64 weights, pooling=mean)"
    )
    assert repr(PairwiseLift(1, 8)).startswith("PairwiseLift(1x1 -> 8x2 | ")
    assert repr(PairwiseReduce("min", 4)) == "PairwiseReduce(4x2 -> 4x1 | 0 weights, min)"
    assert repr(ChannelDropout(0.5, 0, 3)) == "ChannelDropout(3x0 -> 3x0 | 0 weights, p=0.5)"
    assert repr(PMA(4, 2, heads=2, seeds=3)).startswith("PMA(4x1 -> 6x0 | ")


def saved_bytes(layer, x: torch.Tensor, mask: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x, mask)
    return sum(storages.values())


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
def test_pairs_to_pairs_memory_is_linear_in_pairs(pooling: str) -> None:
    """The 2 -> 2 layer keeps a few pair-sized tensors for backward, never n^4 of anything."""
    layer = EquivariantLinear(2, 2, 4, 4, pooling)
    for n in (16, 64):
        x = torch.randn(2, n, n, 4, requires_grad=True)
        ratio = saved_bytes(layer, x, torch.ones(2, n, dtype=torch.bool)) / (x.numel() * 4)
        assert ratio < 6, f"n={n}: autograd keeps {ratio:.1f} input-sized tensors"
