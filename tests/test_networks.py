"""Networks from specs and presets: orders checked at build time, presets usable from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from symlight.models import (
    LAYERS,
    PRESETS,
    Activation,
    EquivariantLinear,
    EquivariantModule,
    EquivariantNetwork,
    EquivariantSequential,
    MLPBaseline,
    PairwiseLift,
    PairwiseNet,
    PairwiseReduce,
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


def test_sequential_mismatch_names_positions_layers_and_orders() -> None:
    layers = [EquivariantLinear(1, 1, 2, 3), Activation("relu", 1), PairwiseReduce("max")]
    with pytest.raises(ValueError) as error:
        EquivariantSequential(layers)
    message = str(error.value)
    for part in (
        "layer 1",
        "Activation",
        "returns order 1",
        "layer 2",
        "PairwiseReduce",
        "order 2",
    ):
        assert part in message


def test_network_spec_mismatch_is_raised_at_build_time() -> None:
    spec = [{"layer": "linear", "channels": 4}, {"layer": "reduce"}]
    with pytest.raises(ValueError, match=r"layer 0 \(EquivariantLinear.*order 1.*layer 1 \(Pair"):
        EquivariantNetwork(2, 1, 1, spec)
    with pytest.raises(
        ValueError, match=r"layer 0 \(PairwiseReduce\) takes order 2.*input has order 1"
    ):
        EquivariantNetwork(2, 1, 1, [{"layer": "reduce"}])


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
    with pytest.raises(ValueError, match="must return 1 channels of order 1"):
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
