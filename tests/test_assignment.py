"""The linear-assignment task: targets, the greedy decoder and its gap, the symmetry S_n x S_n of
the task's network, and a short fit."""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from symlight.callbacks import EquivarianceCheck
from symlight.check import assert_equivariant
from symlight.models import EquivariantNetwork
from symlight.symmetry import permute_sets, random_permutation
from symlight.tasks import AssignmentDataModule
from symlight.tasks.assignment import assignment_cost, greedy_assignment
from symlight.training import SymmetricModule

ROOT = Path(__file__).resolve().parent.parent


def task_network() -> EquivariantNetwork:
    """The network of configs/assignment.yaml, for the task's reps."""
    config = yaml.safe_load((ROOT / "configs" / "assignment.yaml").read_text())
    options = dict(config["model"]["init_args"]["net"]["init_args"])
    options["in_order"] = tuple(options["in_order"])
    return EquivariantNetwork(1, 1, (1, 1), **options)


@pytest.mark.parametrize("costs", ["uniform", "euclidean"])
def test_targets_are_optimal_assignments(costs):
    task = AssignmentDataModule(n=5, costs=costs)
    batch = task.draw(8, 2, 5, torch.Generator().manual_seed(0))
    rows, cols = batch["mask"]
    assert torch.equal(rows, cols) and not rows.all()  # mixed sizes: padded rows and columns
    for b in range(8):
        size = int(rows[b].sum())
        c = batch["x"][b, :size, :size, 0]
        best = min(
            sum(float(c[i, p[i]]) for i in range(size)) for p in itertools.permutations(range(size))
        )
        y = batch["y"][b]
        assert sorted(y[:size].tolist()) == list(range(size))  # a permutation of the columns
        assert (y[size:] == -1).all() and (batch["x"][b, size:] == 0).all()
        assert float(c[torch.arange(size), y[:size]].sum()) == pytest.approx(best, abs=1e-5)
        assert float(batch["opt"][b]) == pytest.approx(best, abs=1e-5)
    if costs == "euclidean":  # distances between points of the unit square
        assert batch["x"].max() <= 2**0.5


def test_greedy_decoding_is_a_valid_assignment():
    gen = torch.Generator().manual_seed(0)
    sizes = torch.tensor([6, 3, 1, 5])
    mask = torch.arange(6)[None] < sizes[:, None]
    picks = greedy_assignment(torch.randn(4, 6, 6, generator=gen), mask, mask)
    for b, size in enumerate(sizes.tolist()):
        assert sorted(picks[b, :size].tolist()) == list(range(size))
        assert (picks[b, size:] == -1).all()


def test_greedy_gap_by_hand():
    """Costs [[1, 2], [3, 8]]: the optimum takes 2 + 3 = 5; greedy on the costs takes the cheapest
    entry first, 1, and is left with 8: 9, a gap of (9 - 5) / 5 = 0.8."""
    task = AssignmentDataModule(n=2)
    costs = torch.tensor([[[1.0, 2.0], [3.0, 8.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    batch = {"x": costs[..., None], "mask": (mask, mask), "y": torch.tensor([[1, 0]])}
    batch["opt"] = torch.tensor([5.0])
    assert assignment_cost(costs, greedy_assignment(-costs, mask, mask)).item() == 9.0
    trivial = task.evaluate(-batch["x"], batch)  # the negated costs as scores
    assert trivial["gap"].item() == pytest.approx(0.8) == trivial["baseline_gap"].item()
    assert trivial["row_acc"].item() == 0.5 and trivial["solved"].item() == 0.0
    right = task.evaluate(torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])[..., None], batch)
    assert right["gap"].item() == 0.0 and right["solved"].item() == 1.0
    assert right["row_acc"].item() == 1.0 and right["baseline_gap"].item() == pytest.approx(0.8)


def test_the_target_follows_permutations_of_rows_and_columns():
    """Permuting rows by p and columns by q: row i of the new matrix is row p[i], and the column
    it takes is where q put the old one."""
    task = AssignmentDataModule(n=6)
    batch = task.draw(4, 6, 6, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    p, q = random_permutation(4, 6, generator=gen), random_permutation(4, 6, generator=gen)
    moved = permute_sets(batch["x"], (p, q), (1, 1))
    y_moved = torch.argsort(q, 1).gather(1, batch["y"].gather(1, p))
    costs = moved[..., 0]
    torch.testing.assert_close(assignment_cost(costs, y_moved), batch["opt"])


def test_the_tasks_network_is_equivariant_under_both_permutations():
    torch.manual_seed(0)
    task = AssignmentDataModule(n=7)
    batch = task.draw(4, 1, 7, torch.Generator().manual_seed(0))  # padded rows and columns
    batch = {"x": batch["x"].double(), "mask": batch["mask"]}
    assert task.symmetry.num_sets == 2 and task.symmetry.out_order == (1, 1)
    net = task_network().double()
    for train in (False, True):
        result = assert_equivariant(net, batch, task.symmetry, train=train)
        assert result.max_abs_error < 1e-9 and len(result.rows) == 6


def test_a_short_fit_lowers_the_loss_and_passes_the_equivariance_check():
    torch.manual_seed(0)
    task = AssignmentDataModule(n=6, n_min=4, n_max=8, val_sizes=[9], batch_size=32, val_sets=32)
    model = SymmetricModule(
        partial(EquivariantNetwork, in_order=(1, 1), layers=[{"layer": "linear", "channels": 8}]),
        element_shape=task.element_shape,
        rep_out=task.rep_out,
        lr=1e-2,
    )
    batch = task.draw(64, 6, 6, torch.Generator().manual_seed(5))
    before = task.loss(model(batch).detach(), batch).item()
    check = EquivarianceCheck(on_violation="raise")
    trainer = L.Trainer(
        max_steps=40,
        callbacks=[check],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=40,
        limit_train_batches=40,
    )
    trainer.fit(model, task)
    after = task.loss(model(batch).detach(), batch).item()
    assert after < 0.9 * before
    assert check.last["max_abs_error"] < 1e-4  # checked on both sets' permutations
    metrics = trainer.callback_metrics
    assert {"val/gap", "val/baseline_gap", "val/solved", "val/row_acc@n=9"} <= set(metrics)
    assert metrics["val/gap"] < metrics["val/baseline_gap"]


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="n_min <= n_max"):
        AssignmentDataModule(n_min=8, n_max=4)
    with pytest.raises(ValueError, match="costs must be uniform or euclidean"):
        AssignmentDataModule(costs="manhattan")
