"""The default logger files Lightning's epoch scalar with the training curves."""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from symlight.training import RunLogger

from conftest import scalars


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def training_step(self, batch, batch_idx):
        loss = ((self.w * batch[0]) ** 2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_epoch_is_logged_as_train_epoch(tmp_path):
    logger = RunLogger(tmp_path, name="tiny", version=0, default_hp_metric=False)
    data = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=2)
    trainer = L.Trainer(
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Tiny(), data)
    logged = scalars(tmp_path / "tiny" / "version_0")
    assert "epoch" not in logged
    assert logged["train/epoch"] == [0.0] * 4 + [1.0] * 4
    assert len(logged["train/loss"]) == 8
