"""Networks from specs and presets: reps flow and are checked at build time, presets usable from
the CLI."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from symlight.core.groups import cyclic, dihedral
from symlight.core.rep import Rep
from symlight.models import (
    LAYERS,
    PRESETS,
    Activation,
    EquivariantLinear,
    EquivariantModule,
    EquivariantNetwork,
    EquivariantSequential,
    GroupLinear,
    MLPBaseline,
    PairwiseLift,
    PairwiseNet,
    PairwiseReduce,
    build_layer,
    spec_options,
)
from symlight.training import NetworkFactory

from conftest import TINY, run_cli

CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "models").glob("*.yaml"))


def test_presets_are_equivariant_networks_only() -> None:
    assert {"DeepSets", "PairwiseNet", "SetTransformer"} <= set(PRESETS)
    assert MLPBaseline not in PRESETS.values()
    for cls in PRESETS.values():
        net = cls(2, 1, 1)
        assert isinstance(net, EquivariantModule)
        assert (int(net.in_order), int(net.out_order)) == (1, 1)


def test_sequential_mismatch_names_positions_layers_and_reps() -> None:
    layers = [EquivariantLinear(1, 1, 2, 3), Activation("relu", 1), PairwiseReduce("max")]
    with pytest.raises(ValueError) as error:
        EquivariantSequential(layers)
    assert str(error.value) == (
        "layer 1 (Activation) returns ?x1 but layer 2 (PairwiseReduce) takes ?x2: the orders differ"
    )


def test_sequential_channel_mismatch_is_a_build_error() -> None:
    layers = [
        EquivariantLinear(1, 2, 2, 16),
        PairwiseReduce("max", 16),
        EquivariantLinear(1, 1, 8, 1),
    ]
    with pytest.raises(ValueError) as error:
        EquivariantSequential(layers)
    assert str(error.value) == (
        "layer 1 (PairwiseReduce) returns 16x1 but layer 2 (EquivariantLinear) takes 8x1: "
        "the channels differ"
    )


def test_sequential_group_mismatch_is_a_build_error() -> None:
    layers = [GroupLinear("dihedral(6)", 1, 1, 2, 4), EquivariantLinear(1, 1, 4, 1)]
    with pytest.raises(
        ValueError,
        match=r"returns 4x1 @ D_6 but layer 1 \(EquivariantLinear\) "
        r"takes 4x1: the groups differ",
    ):
        EquivariantSequential(layers)
    # the same S_n layer built for the group's rep composes, and names the group
    net = EquivariantSequential(
        [GroupLinear("dihedral(6)", 1, 1, 2, 4), EquivariantLinear(1, 1, 4, 1, group="dihedral(6)")]
    )
    assert net.rep_out == Rep.parse("1x1 @ dihedral(6)") and net.group == dihedral(6)


def test_undeclared_channels_take_any() -> None:
    net = EquivariantSequential([EquivariantLinear(1, 1, 2, 3), Activation("relu", 1)])
    assert str(net.rep_in) == "2x1" and str(net.rep_out) == "?x1"
    assert net(torch.randn(2, 4, 2)).shape == (2, 4, 3)


def test_network_spec_mismatch_is_raised_at_build_time() -> None:
    spec = [{"layer": "linear", "channels": 4}, {"layer": "reduce"}]
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(EquivariantLinear\) returns 4x1 but layer 1 \(PairwiseReduce\) takes 4x2",
    ):
        EquivariantNetwork(2, 1, 1, spec)
    with pytest.raises(
        ValueError, match=r"the network input is 2x1 but layer 0 \(PairwiseReduce\) takes 2x2"
    ):
        EquivariantNetwork(2, 1, 1, [{"layer": "reduce"}])


def test_network_spec_channel_mismatch_names_both_layers_and_reps() -> None:
    """A YAML-like layer list whose ``in_channels`` disagree with what flows into the layer."""
    spec = yaml.safe_load(
        """
        - {layer: lift, channels: 16}
        - {layer: activation}
        - {layer: reduce, reduce: max}
        - {layer: linear, in_channels: 8, channels: 4}
        """
    )
    with pytest.raises(ValueError) as error:
        EquivariantNetwork(3, 1, 1, spec)
    assert str(error.value) == (
        "layer 2 (PairwiseReduce) returns 16x1 but layer 3 (EquivariantLinear) takes 8x1: "
        "the channels differ"
    )
    with pytest.raises(ValueError, match=r"the network input is 3x1 but layer 0 \(MLP\) takes 2x1"):
        EquivariantNetwork(3, 1, 1, [{"layer": "mlp", "in_channels": 2}])
    # in_channels that agree are only a check
    spec[3]["in_channels"] = 16
    net = EquivariantNetwork(3, 1, 1, spec)
    assert str(net.layers[3].rep_in) == "16x1"


def test_network_with_a_group_has_it_in_every_rep() -> None:
    spec = [
        {"layer": "group_linear", "order": 2, "channels": 4},
        {"layer": "activation"},
        {"layer": "linear", "order": 1},
        {"layer": "layer_norm"},
    ]
    net = EquivariantNetwork(2, 3, 0, spec, group="cyclic(5)")
    assert net.group == cyclic(5) and net.rep_out == Rep(3, 0, "cyclic(5)")
    for layer in net.layers:
        assert layer.rep_in.group == cyclic(5) and layer.rep_out.group == cyclic(5)
    assert isinstance(net.layers[-1], GroupLinear)
    assert "2x1 @ C_5 -> 3x0 @ C_5" in repr(net)
    with pytest.raises(ValueError, match="group_linear needs a group"):
        EquivariantNetwork(2, 3, 0, spec)
    with pytest.raises(ValueError, match="takes its group from its input"):
        EquivariantNetwork(2, 3, 0, [{"layer": "group_linear", "group": "cyclic(5)"}])


def test_network_spec_errors_list_the_alternatives() -> None:
    with pytest.raises(ValueError, match="unknown layer 'conv'; available: linear"):
        EquivariantNetwork(2, 1, 1, [{"layer": "conv"}])
    with pytest.raises(ValueError, match="no option 'size'; options: channels, hidden"):
        EquivariantNetwork(2, 1, 1, [{"layer": "lift", "size": 3}])
    with pytest.raises(ValueError, match="pooling must be one of"):
        EquivariantNetwork(2, 1, 1, [{"layer": "linear", "pooling": "median"}])


def test_network_without_head_checks_its_output() -> None:
    spec = [{"layer": "lift", "channels": 3}, {"layer": "reduce"}]
    net = EquivariantNetwork(2, 3, 1, spec, head=False)
    assert net(torch.randn(2, 5, 2)).shape == (2, 5, 3)
    with pytest.raises(ValueError, match=r"returns 3x1; the network must return 1x1"):
        EquivariantNetwork(2, 1, 1, spec, head=False)


def test_network_flows_orders_and_channels() -> None:
    spec = [
        {"layer": "lift", "channels": 4},
        {"layer": "linear", "order": 2, "channels": 6},
        {"layer": "activation"},
        {"layer": "linear", "order": 0, "channels": 5},
    ]
    net = EquivariantNetwork(3, 2, 1, spec)
    orders = [(int(m.in_order), int(m.out_order)) for m in net.layers]
    assert orders == [(1, 2), (2, 2), (2, 2), (2, 0), (0, 1)]
    assert net.layers[-1].in_channels == 5
    assert net(torch.randn(2, 4, 3), torch.ones(2, 4, dtype=torch.bool)).shape == (2, 4, 2)
    assert set(LAYERS) >= {"linear", "lift", "reduce", "compare", "sab", "isab", "pma"}


def test_every_layer_builds_from_its_spec_with_the_class_defaults() -> None:
    """``from_spec`` defaults are the constructor's, and every layer flows the input's rep."""
    for name, cls in LAYERS.items():
        constructor = inspect.signature(cls).parameters
        for option, parameter in inspect.signature(cls.from_spec).parameters.items():
            if option in constructor and option not in ("channels", "order"):
                assert parameter.default == constructor[option].default, (name, option)
        assert spec_options(cls)[-1] == "in_channels"
    rep = Rep(4, 1, "cyclic(4)")
    for name in LAYERS:
        layer = build_layer({"layer": name}, rep_in=rep if name != "reduce" else rep.with_order(2))
        assert layer.rep_in.matches(rep.with_order(layer.rep_in.order)), name
        assert layer.rep_out.group == cyclic(4), name


def test_presets_have_the_parameter_counts_of_their_layers() -> None:
    """Built by flowing reps, the presets hold exactly the layers they held when built by hand."""
    expected = {  # counts of the layer-by-layer construction, for (3, 2, out_order)
        ("DeepSets", 0): 12994,
        ("DeepSets", 1): 8962,
        ("PairwiseNet", 0): 18946,
        ("PairwiseNet", 1): 19010,
        ("SetTransformer", 0): 76098,
        ("SetTransformer", 1): 50818,
        ("EquivariantNetwork", 0): 4450,
        ("EquivariantNetwork", 1): 4514,
    }
    for (name, order), count in expected.items():
        assert PRESETS[name](3, 2, order).num_weights() == count, (name, order)
    assert PairwiseNet(3, 2, 2, hidden=6).num_weights() == 838
    assert PairwiseNet(3, 2, 1, pair_layers=0, chunk_size=3).num_weights() == 3586


def test_pairwise_net_layout() -> None:
    net = PairwiseNet(1, 1, 1, hidden=8, pair_layers=2)
    kinds = [type(m) for m in net.layers]
    assert kinds[0] is PairwiseLift and kinds.count(PairwiseReduce) == 1
    assert sum(isinstance(m, EquivariantLinear) and m.in_order == 2 for m in net.layers) == 2
    with pytest.raises(ValueError, match="chunk_size needs pair_layers=0"):
        PairwiseNet(1, 1, 1, pair_layers=1, chunk_size=10)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_model_configs_build_through_jsonargparse(config: Path) -> None:
    """Each ``configs/models/*.yaml`` is a ``net`` value the CLI accepts and builds for argmax."""
    parser = ArgumentParser()
    parser.add_argument("--net", type=NetworkFactory)
    cfg = parser.parse_object({"net": yaml.safe_load(config.read_text())})
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    net = instantiate(cfg).net(1, 1, 1)
    assert int(net.out_order) == 1
    x, mask = torch.rand(3, 12, 1), torch.arange(12)[None] < torch.tensor([[12], [5], [1]])
    y = net(x, mask)
    assert y.shape == (3, 12, 1) and torch.isfinite(y).all()
    assert yaml.safe_load(config.read_text())["class_path"].startswith("symlight.models.")


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_model_configs_train_on_argmax_through_the_cli(config: Path, tmp_path: Path) -> None:
    """``python -m symlight fit --config argmax.yaml --model.init_args.net <config>`` runs."""
    args = ["fit", "--config", "argmax.yaml", "--model.init_args.net", str(config), *TINY]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
