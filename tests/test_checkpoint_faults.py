"""A checkpoint that cannot be written whole never replaces a good one: a disk that fills up in the
middle of a save ends the fit with one line, and every checkpoint written before stays loadable."""

import errno
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from symlight.callbacks import AtomicCheckpointIO

from conftest import fails

CHECKPOINTS = Path("lightning_logs/argmax/version_0/checkpoints")
FIT = [
    "fit",
    "--config=argmax",
    "--data.init_args.batches_per_epoch=6",
    "--data.init_args.val_sets=64",
    "--data.init_args.val_sizes=[]",
    "--trainer.max_epochs=3",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--checkpoint.last_every_n_train_steps=2",
]


def fill_the_disk_at(save: int, monkeypatch) -> list[str]:
    """From the ``save``-th checkpoint on, Lightning's writer writes half the file, then fails as
    a full disk does. Returns the paths it was asked to write."""
    write = TorchCheckpointIO.save_checkpoint
    paths: list[str] = []

    def full_disk(self, checkpoint, path, storage_options=None):
        paths.append(str(path))
        write(self, checkpoint, path, storage_options)
        if len(paths) >= save:
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", full_disk)
    return paths


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.filterwarnings("ignore:.*could not find the monitored key")
def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    paths = fill_the_disk_at(save=4, monkeypatch=monkeypatch)
    line = fails(FIT, capsys)
    assert "No space left on device" in line and "intact" in line, line
    assert len(paths) == 4 and all(p.endswith(".partial") for p in paths)
    folder = tmp_path / CHECKPOINTS
    assert not list(folder.glob("*.partial")), "a failed write leaves no partial file"
    last = load(folder / "last.ckpt")  # the third save's, whole
    assert 0 < last["global_step"] < 3 * 6
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    for kept in folder.glob("*.ckpt"):
        load(kept)  # every checkpoint left there loads


def test_a_write_that_fails_halfway_leaves_the_previous_file(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    fill_the_disk_at(save=1, monkeypatch=monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": 2, "w": torch.zeros(1000)}, path)
    saved = load(path)
    assert saved["step"] == 1 and torch.equal(saved["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
