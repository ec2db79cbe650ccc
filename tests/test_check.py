import pytest
import torch
from torch import nn

import symlight.models
from symlight.check import (
    EquivarianceViolation,
    assert_equivariant,
    equivariance_error,
    locate_violation,
    tolerances,
)
from symlight.models import (
    Activation,
    DeepSets,
    EquivariantLinear,
    EquivariantModule,
    EquivariantSequential,
    MLPBaseline,
    mask_output,
)
from symlight.symmetry import SetSymmetry

PRESETS = getattr(symlight.models, "PRESETS", {"DeepSets": DeepSets})
SET = SetSymmetry({"x": 1}, out_order=1)


def make_batch(batch=5, n=7, features=3, dtype=torch.float64, padded=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, n, dtype=torch.bool)
    if padded:
        sizes = torch.randint(2, n + 1, (batch,), generator=gen)
        sizes[0] = n
        mask = torch.arange(n)[None, :] < sizes[:, None]
    x = torch.randn(batch, n, features, generator=gen, dtype=dtype) * mask[..., None]
    return {"x": x, "mask": mask}


class PositionBias(EquivariantModule):
    """Claims to be a set->set layer but adds a term that depends on the element's position."""

    def __init__(self, channels: int) -> None:
        super().__init__(f"{channels}x1", f"{channels}x1")
        self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, x, mask=None):
        position = torch.arange(x.shape[1], dtype=x.dtype, device=x.device)[None, :, None]
        return mask_output(x + 0.1 * position * self.scale, mask, 1)


def broken_net(in_channels=3, out_channels=2):
    return EquivariantSequential(
        [
            EquivariantLinear(1, 1, in_channels, 8),
            Activation("relu", 1),
            PositionBias(8),
            EquivariantLinear(1, 1, 8, out_channels),
        ]
    ).double()


# -- flagged --------------------------------------------------------------------------------------


def test_mlp_baseline_is_flagged():
    torch.manual_seed(0)
    net = MLPBaseline(3, 1, out_order=1, n=7).double()
    batch = make_batch()
    result = equivariance_error(net, batch, SET)
    assert not result.ok()
    assert result.max_rel_error > 1e-2
    with pytest.raises(EquivarianceViolation, match="MLPBaseline"):
        assert_equivariant(net, batch, SET)


def test_mlp_baseline_invariant_output_is_flagged():
    torch.manual_seed(0)
    net = MLPBaseline(3, 2, out_order=0, n=7).double()
    with pytest.raises(EquivarianceViolation, match="not equivariant"):
        assert_equivariant(net, make_batch(), SetSymmetry({"x": 1}, out_order=0))


def test_injected_position_term_is_flagged_and_named():
    torch.manual_seed(0)
    net = broken_net()
    batch = make_batch()
    with pytest.raises(EquivarianceViolation) as info:
        assert_equivariant(net, batch, SET)
    message = str(info.value)
    assert "PositionBias 'layers.2'" in message
    assert "transposition" in message  # the table lists every element
    result = equivariance_error(net, batch, SET)
    culprit = locate_violation(net, batch, SET, result.violations()[0].perm)
    assert culprit is not None and culprit.name == "layers.2" and culprit.order == 1


def test_generators_catch_what_one_position_breaks():
    # Only the first element is treated differently: every generator moves it.
    class FirstSpecial(EquivariantModule):
        def __init__(self):
            super().__init__(1, 1)

        def forward(self, x, mask=None):
            out = x.clone()
            out[:, 0] = 2 * out[:, 0]
            return out

    result = equivariance_error(FirstSpecial(), make_batch(padded=False), SET, num_samples=0)
    assert [r.element for r in result.rows] == ["transposition", "cycle"]
    assert all(r.max_abs_error > 0 for r in result.rows)


# -- passes ---------------------------------------------------------------------------------------


def _supported_orders(cls) -> list[int]:
    orders = []
    for order in (0, 1, 2):
        try:
            cls(3, 2, order)
        except ValueError:
            continue
        orders.append(order)
    return orders


PRESET_ORDERS = [(name, k) for name in sorted(PRESETS) for k in _supported_orders(PRESETS[name])]


def test_every_preset_supports_per_element_and_invariant_outputs():
    for name, cls in PRESETS.items():
        assert {0, 1} <= set(_supported_orders(cls)), name


@pytest.mark.parametrize(("name", "out_order"), PRESET_ORDERS)
def test_every_equivariant_preset_passes(name, out_order):
    torch.manual_seed(0)
    net = PRESETS[name](3, 2, out_order)
    net = net.double()
    symmetry = SetSymmetry({"x": 1}, out_order=out_order)
    batch = make_batch()
    result = assert_equivariant(net, batch, symmetry, train=False)
    assert result.max_abs_error < 1e-9
    assert_equivariant(net, batch, symmetry, train=True)  # shared-channel dropout, if any


@pytest.mark.parametrize("out_order", [0, 1, 2])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "masked"])
def test_orders_and_masks(out_order, padded):
    torch.manual_seed(0)
    net = EquivariantSequential(
        [
            EquivariantLinear(1, 2, 3, 6),
            Activation("tanh", 2),
            EquivariantLinear(2, out_order, 6, 2),
        ]
    ).double()
    symmetry = SetSymmetry({"x": 1}, out_order=out_order)
    batch = make_batch(padded=padded)
    result = assert_equivariant(net, batch, symmetry, num_samples=3)
    assert len(result.rows) == 5
    assert result.dtype == torch.float64


def test_padded_entries_are_not_compared_and_stay_padded():
    class GarbageInPadding(EquivariantModule):
        def __init__(self):
            super().__init__(1, 1)

        def forward(self, x, mask=None):
            position = torch.arange(x.shape[1], dtype=x.dtype)[None, :, None]
            return torch.where(mask[..., None], x, position)

    batch = make_batch()
    assert not batch["mask"].all()
    result = equivariance_error(GarbageInPadding(), batch, SET, num_samples=3)
    assert result.max_abs_error == 0.0
    for row in result.rows:
        moved = row.perm != torch.arange(batch["mask"].shape[1])
        assert not (moved & ~batch["mask"]).any()


def test_several_inputs_share_one_set_axis():
    class WithLabels(EquivariantModule):
        """y_i = x_i * label_i + sum_j adjacency[i, j]."""

        def __init__(self):
            super().__init__(1, 1)

        def forward_batch(self, batch):
            x, labels, adj = batch["x"], batch["labels"], batch["adjacency"]
            return x * labels[..., None] + adj.sum(2, keepdim=True)

    gen = torch.Generator().manual_seed(0)
    batch = make_batch(padded=False)
    batch["labels"] = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    batch["adjacency"] = torch.randn(5, 7, 7, generator=gen, dtype=torch.float64)
    model = WithLabels()

    def forward(m, b):
        return m.forward_batch(b)

    symmetry = SetSymmetry({"x": 1, "labels": 1, "adjacency": 2}, out_order=1)
    assert_equivariant(model, batch, symmetry, forward=forward)
    forgot_labels = SetSymmetry({"x": 1, "adjacency": 2}, out_order=1)
    assert not equivariance_error(model, batch, forgot_labels, forward=forward).ok()


def test_dict_outputs_are_measured_one_by_one():
    def forward(m, b):
        y = m(b["x"], mask=b["mask"])
        return {"per_element": y, "pooled": y.sum(1), "broken": y * torch.arange(7.0)[:, None]}

    net = DeepSets(3, 2, hidden=8).double()
    result = equivariance_error(
        net,
        make_batch(padded=False),
        SET,
        forward=forward,
        out_order={"per_element": 1, "pooled": 0, "broken": 1},
    )
    errors = result.per_output
    assert set(errors) == {"per_element", "pooled", "broken"}
    assert errors["per_element"][0] < 1e-12 and errors["pooled"][0] < 1e-12
    assert errors["broken"][0] > 1e-3


# -- train and eval mode, RNG, tolerances --------------------------------------------------------


class SetDropout(EquivariantModule):
    """Channel dropout shared across the set: one mask per set and channel."""

    def __init__(self, p=0.5, shared=True):
        super().__init__(1, 1)
        self.p, self.shared = p, shared

    def forward(self, x, mask=None):
        if not self.training:
            return x
        shape = (x.shape[0], 1, x.shape[2]) if self.shared else x.shape
        keep = torch.rand(shape, dtype=x.dtype) > self.p
        return x * keep / (1 - self.p)


def test_train_mode_seeds_dropout_and_restores_mode_and_rng():
    net = EquivariantSequential([EquivariantLinear(1, 1, 3, 8), SetDropout()]).double().eval()
    batch = make_batch()
    state = torch.get_rng_state()
    result = assert_equivariant(net, batch, SET, train=True)
    assert result.training
    assert not net.training and not any(m.training for m in net.modules())
    assert torch.equal(torch.get_rng_state(), state)

    per_entry = EquivariantSequential([SetDropout(shared=False)]).double()
    assert not equivariance_error(per_entry, batch, SET, train=True).ok()
    assert equivariance_error(per_entry, batch, SET, train=False).ok()
    assert per_entry.training


def test_train_mode_restores_batchnorm_statistics():
    net = EquivariantSequential(
        [EquivariantLinear(1, 1, 3, 4), symlight.models.Pointwise(nn.BatchNorm1d(4))]
    ).double()

    def forward(m, b):  # BatchNorm1d over channels: flatten the set into the batch
        x = m.layers[0](b["x"], b["mask"])
        return m.layers[1].module(x.flatten(0, 1)).view_as(x)

    before = {k: v.clone() for k, v in net.state_dict().items()}
    equivariance_error(net, make_batch(padded=False), SET, train=True, forward=forward)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_same_generator_seed_same_elements():
    net = DeepSets(3, 1, hidden=8).double()
    batch = make_batch()
    a = equivariance_error(net, batch, SET, generator=torch.Generator().manual_seed(3))
    b = equivariance_error(net, batch, SET, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(r.perm, s.perm) for r, s in zip(a.rows, b.rows))


def test_float32_uses_float32_tolerance(dtype):
    net = DeepSets(3, 1, hidden=16, pooling="mean").to(dtype)
    result = assert_equivariant(net, make_batch(n=50, dtype=dtype), SET)
    assert result.dtype == dtype
    assert result.max_rel_error <= tolerances(dtype)[1]
