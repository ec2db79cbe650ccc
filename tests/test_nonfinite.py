"""A NaN or infinite training value ends a fit with one line naming it and its step, exit status
2, and the last good checkpoint intact: finite, and the weights of the step it was saved at; a
damaged checkpoint given to --ckpt_path is one line naming the file."""

import math
import re
from pathlib import Path

import pytest
import torch

from symlight.callbacks import FiniteCheck, NonFiniteError
from symlight.cli import main
from symlight.tasks import ArgmaxDataModule

from conftest import fails, run_cli

EVERY = 2
STOPPED_EARLY = pytest.mark.filterwarnings(
    # a run stopped by max_steps before its first validation has no val/loss for its best.ckpt
    "ignore:.*could not find the monitored key"
)
FIT = [
    "fit",
    "--config=argmax",
    "--data.init_args.batches_per_epoch=20",
    "--data.init_args.val_sets=64",
    "--data.init_args.val_sizes=[]",
    "--trainer.max_epochs=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--model.init_args.schedule=constant",  # the same steps, however long the run
    f"--checkpoint.last_every_n_train_steps={EVERY}",
]
LAST = Path("lightning_logs/argmax/version_0/checkpoints/last.ckpt")


class NaNArgmaxDataModule(ArgmaxDataModule):
    """Argmax sets whose training batch number ``nan_at`` holds a NaN in its first set (on the
    process of rank ``on_rank`` only, if given).
    """

    def __init__(self, nan_at: int = 5, on_rank: int | None = None, **options) -> None:
        super().__init__(**options)
        self.nan_at, self.on_rank, self.count = nan_at, on_rank, 0

    def _draw_train(self, gen: torch.Generator) -> dict:
        batch = super()._draw_train(gen)
        if self.count == self.nan_at and self.on_rank in (None, self.rank):
            batch["x"][0, 0, 0] = math.nan
        self.count += 1
        return batch


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def weights(path: Path) -> tuple[int, dict[str, torch.Tensor]]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    return checkpoint["global_step"], checkpoint["state_dict"]


def check_kept(step: int, tmp_path: Path, monkeypatch, options: list[str]) -> None:
    """``last.ckpt`` holds finite weights saved before ``step``: those of a run stopped there."""
    saved_at, kept = weights(tmp_path / LAST)
    assert saved_at == step - step % EVERY
    assert all(torch.isfinite(value).all() for value in kept.values())
    again = tmp_path / "again"
    again.mkdir()
    monkeypatch.chdir(again)
    main([*FIT, *options, f"--trainer.max_steps={saved_at}"])
    assert weights(again / LAST)[0] == saved_at
    for key, value in weights(again / LAST)[1].items():
        assert torch.equal(kept[key], value), key


@STOPPED_EARLY
def test_a_huge_learning_rate_stops_at_the_nan_loss(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.chdir(tmp_path)
    options = ["--model.init_args.lr=1e12"]
    line = fails([*FIT, *options], capsys)
    found = re.fullmatch(
        r"symlight: error: the training loss is (nan|inf|-inf) at step (\d+) \(epoch 0\); the "
        rf"last good checkpoint is {LAST} \(step (\d+)\); try a smaller learning rate or "
        r"gradient clipping",
        line,
    )
    assert found, line
    step = int(found[2])
    assert 0 < step < 20 and int(found[3]) == step - step % EVERY
    check_kept(step, tmp_path, monkeypatch, options)


@STOPPED_EARLY
def test_nan_in_the_training_data_stops_at_its_batch(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.chdir(tmp_path)
    options = [f"--data={__name__}.NaNArgmaxDataModule", "--data.init_args.nan_at=25"]
    line = fails([*FIT, *options], capsys)
    assert line == (
        "symlight: error: the training batch's x is nan at step 25 (epoch 1); the last good "
        f"checkpoint is {LAST} (step 24); check the data"
    )
    check_kept(25, tmp_path, monkeypatch, options)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_nan_on_one_ddp_process_stops_both_at_its_step(tmp_path):
    ddp = [
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--data.init_args.batch_size=16",
        "--data=test_nonfinite.NaNArgmaxDataModule",
        "--data.init_args.nan_at=5",
        "--data.init_args.on_rank=1",
    ]
    result = run_cli([*FIT, *ddp], tmp_path, timeout=240)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = sorted(line for line in result.stderr.splitlines() if "error" in line.lower())
    assert errors == [
        "symlight: error: the training batch's input is not finite on another process at step 5 "
        f"(epoch 0); the last good checkpoint is {LAST} (step 4); check the data",
        "symlight: error: the training batch's x is nan at step 5 (epoch 0); the last good "
        f"checkpoint is {LAST} (step 4); check the data",
    ], result.stderr[-3000:]


class FakeTrainer:
    """What FiniteCheck reads of a trainer, at step 7 of epoch 0, on one process."""

    global_step, current_epoch, checkpoint_callbacks = 7, 0, []

    class strategy:  # noqa: N801 - an attribute of the trainer
        @staticmethod
        def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:  # noqa: A002
            return decision


def test_only_real_elements_of_a_batch_count():
    x = torch.zeros(2, 3, 1)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    x[1, 2] = math.nan  # padding
    FiniteCheck().on_train_batch_start(FakeTrainer(), None, {"x": x, "mask": mask}, 0)
    x[1, 0] = math.inf
    with pytest.raises(NonFiniteError, match=r"^the training batch's x is inf at step 7 "):
        FiniteCheck().on_train_batch_start(FakeTrainer(), None, {"x": x, "mask": mask}, 0)


def test_weights_that_are_not_finite_are_never_saved():
    """An infinite gradient under a finite loss spoils the weights: the save is refused."""
    network = torch.nn.Sequential(torch.nn.Linear(2, 1))
    with torch.no_grad():
        network[0].weight[0, 1] = -math.inf

    check = FiniteCheck()
    with pytest.raises(NonFiniteError) as error:
        check.on_save_checkpoint(FakeTrainer(), None, {"state_dict": network.state_dict()})
    assert str(error.value) == (
        "the weight 0.weight (not saved) is -inf at step 7 (epoch 0); no checkpoint was written "
        "before it; try a smaller learning rate or gradient clipping"
    )
    with torch.no_grad():
        network[0].weight[0, 1] = 1.0
    check.on_save_checkpoint(FakeTrainer(), None, {"state_dict": network.state_dict()})


def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main([*FIT, "--trainer.max_steps=3", "--checkpoint.last_every_n_train_steps=null"])
    data = LAST.read_bytes()
    middle = len(data) // 2
    damaged = {
        "cut short": data[:middle],
        "changed": data[:middle] + bytes(4096) + data[middle + 4096 :],  # torch.load takes it
    }
    for damage, content in damaged.items():
        LAST.write_bytes(content)
        for given in ("last", str(LAST)):
            line = fails([*FIT, "--ckpt_path", given], capsys)
            assert line.startswith(f"symlight: error: --ckpt_path {LAST} "), line
            assert damage in line
        assert LAST.read_bytes() == content
