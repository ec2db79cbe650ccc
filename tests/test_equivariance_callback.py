import warnings
from functools import partial

import lightning as L
import pytest
import torch
from test_check import PositionBias

from symlight.callbacks import EquivarianceCheck
from symlight.check import EquivarianceViolation
from symlight.cli import main
from symlight.models import DeepSets, MLPBaseline
from symlight.tasks import ArgmaxDataModule
from symlight.training import SymmetricModule

# The argmax task's fresh-batch dataset is iterable with a length; Lightning warns about workers.
pytestmark = pytest.mark.filterwarnings("ignore:Your `IterableDataset` has `__len__`")


def broken_deepsets(in_channels, out_channels, out_order):
    net = DeepSets(in_channels, out_channels, out_order, hidden=8, depth=2)
    net.layers.insert(1, PositionBias(8))
    return net


def fit(net, callback, target="argmax", precision=None, **trainer):
    torch.manual_seed(0)
    task = ArgmaxDataModule(
        target=target, batches_per_epoch=2, val_sets=32, val_sizes=[15], batch_size=16
    )
    model = SymmetricModule(
        net,
        element_shape=task.element_shape,
        rep_out=task.rep_out,
    )
    kwargs = dict(
        max_epochs=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    if precision:
        kwargs["precision"] = precision
    trainer = L.Trainer(**{**kwargs, **trainer})
    trainer.fit(model, task)
    return trainer


def logged(trainer):
    return {k: float(v) for k, v in trainer.callback_metrics.items() if "equivariance" in k}


@pytest.mark.parametrize("target", ["argmax", "max"])  # per-element and invariant outputs
def test_equivariant_model_logs_zero_and_does_not_warn(target):
    callback = EquivarianceCheck(on_violation="raise")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="EquivarianceCheck")
        trainer = fit(partial(DeepSets, hidden=8), callback, target=target)
    values = logged(trainer)
    assert set(values) == {"equivariance/max_abs_error", "equivariance/max_rel_error"}
    assert values["equivariance/max_rel_error"] <= 1e-4
    assert callback.last["max_abs_error"] == values["equivariance/max_abs_error"]


def test_mlp_baseline_warns_and_logs():
    with pytest.warns(UserWarning, match="MLPBaseline 'net'"):
        trainer = fit(partial(MLPBaseline, n=15, hidden=16), EquivarianceCheck())
    assert logged(trainer)["equivariance/max_rel_error"] > 1e-2


def test_injected_layer_raises_with_its_name():
    with pytest.raises(EquivarianceViolation, match=r"PositionBias 'net\.layers\.1'") as info:
        fit(broken_deepsets, EquivarianceCheck(on_violation="raise"), num_sanity_val_steps=1)
    assert "validation loader 0, batch 0" in str(info.value)


def test_log_mode_is_quiet_and_disabled_logs_nothing():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="EquivarianceCheck")
        trainer = fit(broken_deepsets, EquivarianceCheck(on_violation="log"))
    assert logged(trainer)["equivariance/max_abs_error"] > 1e-2
    assert logged(fit(broken_deepsets, EquivarianceCheck(enabled=False))) == {}


def test_checks_selected_batches_without_touching_training_state():
    calls = []

    class Counting(EquivarianceCheck):
        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, i=0):
            before = (torch.get_rng_state(), pl_module.training)
            checked = self._checked
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, i)
            calls.append((i, batch_idx, self._checked > checked))
            assert torch.equal(torch.get_rng_state(), before[0])
            assert pl_module.training == before[1]

    fit(partial(DeepSets, hidden=8), Counting())  # 2 loaders of 2 batches each
    assert [(i, b) for i, b, checked in calls if checked] == [(0, 0), (1, 0)]
    calls.clear()
    fit(partial(DeepSets, hidden=8), Counting(every_n_steps=1))
    assert all(checked for *_, checked in calls) and len(calls) == 4


def slightly_broken(in_channels, out_channels, out_order):
    net = broken_deepsets(in_channels, out_channels, out_order)
    torch.nn.init.constant_(net.layers[1].scale, 1e-2)
    return net


def test_mixed_precision_uses_the_autocast_dtype_tolerance():
    # A small violation: over float32's tolerance, within bfloat16's.
    with pytest.warns(UserWarning, match="PositionBias"):
        trainer = fit(slightly_broken, EquivarianceCheck())
    assert 1e-4 < logged(trainer)["equivariance/max_rel_error"] < 5e-2
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="EquivarianceCheck")
        fit(slightly_broken, EquivarianceCheck(), precision="bf16-mixed")


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="warn, raise or log"):
        EquivarianceCheck(on_violation="ignore")
    with pytest.raises(ValueError, match="every_n_steps"):
        EquivarianceCheck(every_n_steps=0)


def test_cli_registers_the_check_and_it_can_be_switched_off(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", "argmax.yaml", "--print_config"])
    printed = capsys.readouterr().out
    assert "equivariance:" in printed and "on_violation: warn" in printed
    with pytest.raises(SystemExit):
        main(["fit", "--config", "argmax.yaml", "--equivariance.enabled=false", "--print_config"])
    assert "enabled: false" in capsys.readouterr().out
