"""Properties that hold for every shape: each layer of the layer table, and linear maps of drawn
orders and channels, are equivariant and ignore padding, for drawn set sizes (1 included), masks
(fully padded sets included), padding positions and dtypes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_layers import LAYERS, garbage, run

from symlight.core.rep import entry_mask
from symlight.models import EquivariantLinear
from symlight.symmetry import permute, random_permutation

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}
PROPERTIES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@st.composite
def padded_sets(draw, order: int, channels: int, dtype: torch.dtype):
    """``(x, mask, generator)``: a batch of 1 to 3 sets padded to n in 1..8, each with 0 to n
    real elements at drawn positions, padded entries holding large garbage."""
    n = draw(st.integers(1, 8))
    sizes = draw(st.lists(st.integers(0, n), min_size=1, max_size=3))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    mask = torch.arange(n)[None, :] < torch.tensor(sizes)[:, None]
    mask = permute(mask, random_permutation(len(sizes), n, generator=gen), 1)
    x = torch.randn((len(sizes),) + (n,) * order + (channels,), generator=gen, dtype=dtype)
    return garbage(x, mask, order, gen), mask, gen


def check_properties(layer, x, mask, gen, dtype) -> None:
    k, m = int(layer.in_order), int(layer.out_order)
    y = run(layer, x, mask)
    assert torch.isfinite(y).all()
    layer.rep_out.check(y, "output")
    tol = TOLERANCE[dtype] * max(1.0, y.abs().max().item())
    # padding never changes real outputs, and padded outputs are zeros
    torch.testing.assert_close(run(layer, garbage(x, mask, k, gen), mask), y, atol=tol, rtol=0)
    keep = entry_mask(mask, m, trailing=1)
    if keep is not None:
        assert (y.masked_select(~keep.expand_as(y)) == 0).all()
    # equivariance: permuting the real elements permutes the output
    perm = random_permutation(*mask.shape, mask, gen)
    y_perm = run(layer, permute(x, perm, k), permute(mask, perm, 1))
    torch.testing.assert_close(y_perm, permute(y, perm, m), atol=tol, rtol=0)


@PROPERTIES
@given(data=st.data(), name=st.sampled_from(sorted(LAYERS)), train=st.booleans())
def test_every_layer_of_the_table(data, name, train):
    torch.manual_seed(0)
    layer = LAYERS[name]().double().train(train)
    x, mask, gen = data.draw(padded_sets(int(layer.in_order), 3, torch.float64))
    check_properties(layer, x, mask, gen, torch.float64)


@PROPERTIES
@given(
    data=st.data(),
    orders=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    channels=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    pooling=st.sampled_from(["sum", "mean", "max"]),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_linear_maps_of_any_orders_and_channels(data, orders, channels, pooling, dtype):
    torch.manual_seed(0)
    layer = EquivariantLinear(*orders, *channels, pooling).to(dtype)
    x, mask, gen = data.draw(padded_sets(orders[0], channels[0], dtype))
    check_properties(layer, x, mask, gen, dtype)
