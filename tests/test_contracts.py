"""What the code promises: only equivariant modules claim equivariance, tolerances come from one
place, network specs take the layer classes' own defaults, the module rejects bad rates."""

import inspect

import pytest
import torch

from symlight.check import TOLERANCES, find_violation, tolerances
from symlight.models import (
    MLP,
    PRESETS,
    SAB,
    DeepSets,
    EquivariantModule,
    MLPBaseline,
    SetModule,
    build_layer,
)
from symlight.symmetry import SetSymmetry
from symlight.training import SymmetricModule


def test_the_mlp_baseline_is_a_set_module_without_the_equivariant_contract():
    net = MLPBaseline(2, 1, out_order=1, n=6)
    assert isinstance(net, SetModule) and not isinstance(net, EquivariantModule)
    assert "equivariant to S_n" in EquivariantModule.__doc__
    assert "promises nothing about symmetry" in " ".join(SetModule.__doc__.split())
    for cls in PRESETS.values():
        assert issubclass(cls, EquivariantModule)
    # The check still runs it as a network and finds it out.
    batch = {"x": torch.randn(3, 6, 2, dtype=torch.float64), "mask": torch.ones(3, 6, dtype=bool)}
    result, message = find_violation(net.double(), batch, SetSymmetry({"x": 1}, out_order=1))
    assert message is not None and "MLPBaseline" in message
    assert result.max_abs_error > 1e-6


def test_tolerances_resolve_in_one_place():
    assert tolerances(torch.float64) == (TOLERANCES[torch.float64],) * 2
    assert tolerances(torch.int64) == (TOLERANCES[torch.float32],) * 2
    assert tolerances(torch.float32, atol=0.5) == (0.5, TOLERANCES[torch.float32])
    # Under bfloat16 autocast a float32 output gets bfloat16's tolerance, not the reverse.
    assert tolerances(torch.float32, compute_dtype=torch.bfloat16)[0] == TOLERANCES[torch.bfloat16]
    assert tolerances(torch.bfloat16, compute_dtype=torch.float32)[0] == TOLERANCES[torch.bfloat16]


def test_network_specs_take_the_layer_classes_defaults():
    mlp = build_layer({"layer": "mlp", "channels": 3}, order=2, channels=4)
    default_hidden = inspect.signature(MLP).parameters["hidden"].default
    assert mlp.net[0].out_features == default_hidden
    assert (mlp.in_channels, mlp.out_channels, int(mlp.in_order)) == (4, 3, 2)
    assert isinstance(build_layer({"layer": "sab", "heads": 2, "channels": 8}, 1, 4), SAB)
    with pytest.raises(ValueError, match="options: channels, heads, layer_norm"):
        build_layer({"layer": "sab", "width": 3}, 1, 4)
    with pytest.raises(ValueError, match="options: order, channels, pooling, bias"):
        build_layer({"layer": "linear", "size": 3}, 1, 4)
    lifted = build_layer({"layer": "linear", "order": 2, "channels": 5}, 1, 4)
    assert (int(lifted.in_order), int(lifted.out_order)) == (1, 2)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"lr": 0.0}, "lr must be a positive"), ({"weight_decay": -0.1}, "weight_decay must be >= 0")],
)
def test_module_rejects_bad_optimiser_settings(options, match):
    with pytest.raises(ValueError, match=match):
        SymmetricModule(DeepSets, **options)
