"""Representations: parse and print, equality with groups, invalid inputs, masks, and the
build-time errors a network gives when reps do not flow."""

from __future__ import annotations

import pytest
import torch

from symlight.core.groups import cyclic, dihedral, parse_group, symmetric
from symlight.core.rep import Rep, entry_mask
from symlight.models import (
    Activation,
    EquivariantLinear,
    EquivariantModule,
    EquivariantNetwork,
    EquivariantSequential,
    GroupLinear,
    MLPBaseline,
    PairwiseReduce,
)


@pytest.mark.parametrize(
    "text",
    ["16x1", "1x0", "8x2", "8x2 @ D_16", "3x1 @ C_5", "4x(1,1)", "4x(1,2) @ (D_4, S)", "?x1"],
)
def test_parse_and_print_round_trip(text):
    rep = Rep.parse(text)
    assert str(rep) == text
    assert Rep.parse(str(rep)) == rep
    assert Rep.parse(rep) is rep


def test_parse_reads_group_expressions_and_spacing():
    rep = Rep.parse(" 8 x 2 @ dihedral(16) ")
    assert rep == Rep(8, 2, "dihedral(16)") == Rep(8, order=2, group=dihedral(16))
    assert str(rep) == "8x2 @ D_16"
    assert Rep.parse("16x1 @ S") == Rep(16, 1)  # S: the symmetric group of any size
    two = Rep.parse("4x(1,1) @ (cyclic(3), S)")
    assert two.orders == (1, 1) and two.groups[0] == cyclic(3) and two.groups[1] is None
    assert two.num_sets == 2 and two.set_axes == 2


def test_equality_compares_groups_by_their_elements():
    a, b = parse_group("dihedral(16)"), parse_group("dihedral(16)")
    assert a is not b
    assert Rep(8, 2, a) == Rep(8, 2, b) and hash(Rep(8, 2, a)) == hash(Rep(8, 2, b))
    assert Rep(8, 2, "dihedral(4)") != Rep(8, 2, "cyclic(4)")  # same points, other elements
    assert Rep(8, 2, "cyclic(4)") != Rep(8, 2)  # C_4 is not S_n
    assert Rep(8, 1, "symmetric(4)") != Rep(8, 1)  # S_4 fixes the size, None does not
    assert Rep(8, 1, symmetric(3)) == Rep(8, 1, "S_3")
    assert Rep(8, 1) != Rep(4, 1) and Rep(8, 1) != Rep(8, 2) and Rep(8, 1) != "8x1"
    assert len({Rep(8, 1, a), Rep(8, 1, b), Rep(8, 1)}) == 2


def test_undeclared_channels_match_any_and_nothing_else():
    assert Rep(None, 1).matches(Rep(16, 1)) and Rep(16, 1).matches(Rep(None, 1))
    assert Rep(16, 1).matches(Rep(16, 1)) and not Rep(16, 1).matches(Rep(8, 1))
    assert not Rep(None, 1).matches(Rep(16, 2))
    assert not Rep(None, 1, "cyclic(4)").matches(Rep(16, 1))
    assert Rep(None, 1) != Rep(16, 1)


def test_views_and_copies():
    rep = Rep(16, 2, "dihedral(8)")
    assert (rep.channels, rep.order, rep.group, rep.size) == (16, 2, dihedral(8), 8)
    assert rep.with_channels(3) == Rep(3, 2, "dihedral(8)")
    assert rep.with_order(0) == Rep(16, 0, "dihedral(8)")
    assert rep.with_group(None) == Rep(16, 2)
    with pytest.raises(AttributeError):
        rep.channels = 3  # immutable
    with pytest.raises(ValueError, match="over 2 sets"):
        _ = Rep(4, (1, 1)).order


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 1), "channels must be a positive int"),
        ((-2, 1), "channels must be a positive int"),
        ((1.5, 1), "channels must be a positive int"),
        ((True, 1), "channels must be a positive int"),
        ((4, 3), "order must be 0"),
        ((4, -1), "order must be 0"),
        ((4, ()), "at least one set"),
        ((4, (1, 1), ("cyclic(3)",)), "one group per set"),
        ((4, 1, "spiral(3)"), "cannot read the group"),
        ((4, 1, 7), "a group must be"),
    ],
)
def test_invalid_reps_raise_value_errors(args, match):
    with pytest.raises(ValueError, match=match):
        Rep(*args)


@pytest.mark.parametrize("text", ["", "16", "x1", "16x", "16x3", "ax1", "16x1 @", "16x1 @ nope(3)"])
def test_invalid_text_raises_value_errors(text):
    with pytest.raises(ValueError):
        Rep.parse(text)


def test_masks_for_orders_0_1_2():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert Rep(4, 0).mask(mask) is None and Rep(4, 1).mask(None) is None
    m1, m2 = Rep(4, 1).mask(mask), Rep(4, 2).mask(mask)
    assert m1.shape == (2, 3, 1) and m2.shape == (2, 3, 3, 1)
    assert torch.equal(m1[..., 0], mask)
    assert torch.equal(m2[..., 0], mask[:, :, None] & mask[:, None, :])
    assert entry_mask(mask, 2, trailing=2).shape == (2, 3, 3, 1, 1)
    y = torch.ones(2, 3, 3, 4)
    zeroed = Rep(4, 2).zero_padding(y, mask)
    assert zeroed.sum() == 4 * (4 + 1)  # 2x2 real pairs in set 0, 1 in set 1
    assert Rep(4, 0).zero_padding(torch.ones(2, 4), mask).sum() == 8


def test_check_names_the_rep_and_the_shape():
    Rep(4, 2).check(torch.zeros(2, 5, 5, 4))
    Rep(None, 1).check(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match=r"rep 4x1 must be \(batch, n, 4\)"):
        Rep(4, 1).check(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="square"):
        Rep(4, 2).check(torch.zeros(2, 5, 6, 4))
    with pytest.raises(ValueError, match="acts on 6"):
        Rep(1, 1, "cyclic(6)").check(torch.zeros(2, 5, 1))


# -- reps of layers, and the build-time errors -----------------------------------------------


def test_layers_expose_their_reps_and_derived_attributes():
    layer = EquivariantLinear(1, 2, 16, 8)
    assert (layer.rep_in, layer.rep_out) == (Rep(16, 1), Rep(8, 2))
    assert (layer.in_order, layer.out_order, layer.in_channels, layer.out_channels) == (1, 2, 16, 8)
    assert layer.group is None
    with pytest.raises(AttributeError):
        layer.rep_in = Rep(3, 1)
    group_layer = GroupLinear("cyclic(5)", 1, 0, 2, 3)
    assert group_layer.rep_in == Rep(2, 1, cyclic(5)) and group_layer.rep_out == Rep(3, 0, "C_5")
    assert group_layer.group == cyclic(5)
    baseline = MLPBaseline(2, 3, out_order=0, n=4)
    assert (baseline.rep_in, baseline.rep_out) == (Rep(2, 1), Rep(3, 0))


def test_channel_mismatch_is_a_build_error_naming_both_layers_and_reps():
    layers = [EquivariantLinear(1, 1, 2, 16), EquivariantLinear(1, 1, 8, 1)]
    with pytest.raises(ValueError) as error:
        EquivariantSequential(layers)
    assert str(error.value) == (
        "layer 0 (EquivariantLinear) returns 16x1 but layer 1 (EquivariantLinear) takes 8x1: "
        "the channels differ"
    )


def test_group_mismatch_is_a_build_error_naming_both_layers_and_reps():
    layers = [GroupLinear("cyclic(4)", 1, 2, 1, 3), PairwiseReduce("max", 3, "dihedral(4)")]
    with pytest.raises(ValueError) as error:
        EquivariantSequential(layers)
    assert str(error.value) == (
        "layer 0 (GroupLinear) returns 3x2 @ C_4 but layer 1 (PairwiseReduce) takes "
        "3x2 @ D_4: the groups differ"
    )
    # an equivariant module takes and returns reps of one group
    with pytest.raises(ValueError, match="reps of one group, got 3x1 @ C_4 -> 3x1"):
        EquivariantModule("3x1 @ cyclic(4)", "3x1")
    with pytest.raises(ValueError, match="the groups differ"):
        EquivariantSequential([Activation("relu", 1, 3), Activation("relu", 1, 3, "cyclic(4)")])


def test_network_mismatch_from_a_spec_names_both_layers():
    spec = [
        {"layer": "lift", "channels": 16},
        {"layer": "reduce"},
        {"layer": "mlp", "in_channels": 8},
    ]
    message = r"layer 1 \(PairwiseReduce\) returns 16x1 but layer 2 \(MLP\) takes 8x1: the channels"
    with pytest.raises(ValueError, match=message):
        EquivariantNetwork(2, 1, 1, spec)
    # the group of the network is in every rep: a layer built for another group does not fit
    net = EquivariantNetwork(1, 1, 1, [{"layer": "group_linear"}], group="cyclic(4)")
    assert str(net.rep_in) == "1x1 @ C_4" and str(net.rep_out) == "1x1 @ C_4"
