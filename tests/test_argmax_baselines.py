"""The argmax family's trivial predictors: each checked against a hand computation on a tiny
batch, the figures they give at n = 100, and their place beside the network's metrics in a fit."""

from functools import partial
from math import comb

import lightning as L
import pytest
import torch

from symlight.models import DeepSets
from symlight.tasks.argmax import ArgmaxDataModule, targets
from symlight.training import SymmetricModule

pytestmark = pytest.mark.filterwarnings("ignore:Attribute .net. removed from hparams")

# Three sets, trained at n = 10: cut-offs 0.9 (one of ten) and 0.7 (three of ten).
VALUES = [[0.95, 0.8, 0.92, 0.1], [0.3, 0.97, 0.2, 0.0], [0.95, 0.0, 0.0, 0.0]]
SIZES = [4, 3, 1]


def tiny_batch(target: str) -> dict:
    x = torch.tensor(VALUES)[..., None]
    mask = torch.arange(4) < torch.tensor(SIZES)[:, None]
    return {"x": x, "mask": mask, **targets(x[..., 0], mask, target, k=3)}


def baseline_values(task: ArgmaxDataModule, batches) -> dict[str, float]:
    """Each baseline's value over ``batches``, through the task's own torchmetrics."""
    metrics, seen = task.metrics(), set()
    for batch in batches:
        for name, args in task.baselines(batch).items():
            metrics[name].update(*(args if isinstance(args, tuple) else (args,)))
            seen.add(name)
    return {name: float(metrics[name].compute()) for name in sorted(seen)}


def task(target: str, **options) -> ArgmaxDataModule:
    return ArgmaxDataModule(target=target, n_min=10, n_max=10, **options)


def test_onehot_baselines_by_hand():
    # y: [1 0 0 0], [0 1 0], [1]. Nothing: 3/4, 2/3, 0/1 right. Cut 0.9 marks [1 0 1 0], [0 1 0], [1].
    found = baseline_values(task("onehot"), [tiny_batch("onehot")])
    assert found == pytest.approx(
        {
            "acc_nothing": 0.0,
            "element_acc_nothing": (3 / 4 + 2 / 3 + 0) / 3,
            "acc_cutoff": (0 + 1 + 1) / 3,
            "element_acc_cutoff": (3 / 4 + 1 + 1) / 3,
        }
    )


def test_topk_baselines_by_hand():
    # k = 3: y is [1 1 1 0], [1 1 1], [1]. Cut 0.7 marks [1 1 1 0], [0 1 0], [1].
    found = baseline_values(task("topk", k=3), [tiny_batch("topk")])
    assert found == pytest.approx(
        {
            "acc_nothing": 0.0,
            "element_acc_nothing": (1 / 4 + 0 + 0) / 3,
            "acc_cutoff": (1 + 0 + 1) / 3,
            "element_acc_cutoff": (1 + 1 / 3 + 1) / 3,
        }
    )


def test_second_baselines_by_hand():
    # Second largest: 0.92, 0.3, the single 0.95. Largest at or below 0.9: 0.8 (wrong), 0.3
    # (right); none in the third set, so its largest, itself (right). Chance: 1/4, 1/3, 1.
    found = baseline_values(task("second"), [tiny_batch("second")])
    assert found == pytest.approx({"acc_chance": (1 / 4 + 1 / 3 + 1) / 3, "acc_cutoff": 2 / 3})


def test_argmax_chance_by_hand():
    found = baseline_values(task("argmax"), [tiny_batch("argmax")])
    assert found == pytest.approx({"acc_chance": (1 / 4 + 1 / 3 + 1) / 3})


def test_max_prior_is_the_median_of_the_maximum_of_ten_by_hand():
    median = 0.5 ** (1 / 10)  # P(max of 10 uniforms <= m) = m^10 = 1/2
    found = baseline_values(task("max"), [tiny_batch("max")])
    expect = (abs(0.95 - median) + abs(0.97 - median) + abs(0.95 - median)) / 3
    assert found == pytest.approx({"mae_prior": expect})


def test_normal_values_cut_at_their_quantile():
    # Standard normal values, one of ten: the cut-off is the 0.9-quantile, 1.2816.
    x = torch.tensor([[1.0, 1.3, -2.0], [1.25, 0.0, -1.0]])[..., None]
    mask = torch.ones(2, 3, dtype=torch.bool)
    batch = {"x": x, "mask": mask, **targets(x[..., 0], mask, "onehot")}
    found = baseline_values(task("onehot", values="normal"), [batch])
    assert found["acc_cutoff"] == pytest.approx(0.5)  # marks [0 1 0] (right), [0 0 0] (wrong)


def test_vector_elements_and_integer_values_keep_only_the_baselines_that_need_no_quantile():
    assert task("onehot", channels=4).baseline_names == ["nothing"]
    assert task("second", values="integers", low=0, high=9).baseline_names == ["chance"]
    assert task("max", channels=4).baseline_names == []
    assert task("rank").baseline_names == []


@pytest.mark.parametrize(("target", "marked"), [("onehot", 1), ("topk", 3)])
def test_marking_nothing_at_n_100_scores_one_minus_the_marked_fraction(target, marked):
    data = task(target, k=3, val_sizes=[100], val_sets=64)
    found = baseline_values(data, data.val_dataloader()[1])
    assert found["element_acc_nothing"] == pytest.approx(1 - marked / 100)  # 0.99 and 0.97
    assert found["acc_nothing"] == 0.0


def test_the_cutoff_learned_at_n_10_gives_top_3_of_100_an_element_accuracy_near_0_73():
    # Above 0.7: 30 of 100 on average, of which the 3 largest are right: 27 wrong, 0.73.
    data = task("topk", k=3, val_sizes=[100], val_sets=256)
    found = baseline_values(data, data.val_dataloader()[1])
    assert found["element_acc_cutoff"] == pytest.approx(0.73, abs=0.015)  # 4.5 standard errors


@pytest.mark.parametrize(("target", "k"), [("onehot", 1), ("topk", 3)])
def test_the_cutoff_solves_the_sets_with_exactly_k_elements_above_it(target, k):
    data = task(target, k=k, val_sizes=[], val_sets=2000)
    found = baseline_values(data, data.val_dataloader()[0])
    expect = comb(10, k) * (k / 10) ** k * (1 - k / 10) ** (10 - k)  # 0.387, 0.267
    assert found["acc_cutoff"] == pytest.approx(expect, abs=0.04)  # 4 standard errors


def test_validation_logs_the_baselines_beside_the_metrics_and_training_does_not():
    data = task("topk", k=3, val_sizes=[100], val_sets=32, batch_size=32, batches_per_epoch=2)
    model = SymmetricModule(partial(DeepSets, hidden=4, depth=1), element_shape=(1,))
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(model, datamodule=data)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert logged["val/element_acc_nothing@n=100"] == pytest.approx(0.97)
    expect = baseline_values(data, data.val_dataloader()[0])
    for name, value in expect.items():
        assert logged[f"val/{name}"] == pytest.approx(value)
    assert not [k for k in logged if k.startswith("train/") and ("_nothing" in k or "_cutoff" in k)]
