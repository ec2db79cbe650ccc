"""EquivarianceCheck under real DDP: two CPU processes (gloo), launched as a subprocess.

The subprocess imports this module (``PYTHONPATH`` is set to ``tests/``) for two helpers: a
network that breaks equivariance on rank 1 only, and a callback that writes what each rank logged.
"""

import json
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from symlight.models import DeepSets, EquivariantModule, EquivariantSequential, mask_output

from conftest import run_cli


class RankOneBias(EquivariantModule):
    """Set->set layer that adds a position-dependent term on DDP rank 1 only."""

    def __init__(self) -> None:
        super().__init__(1, 1)

    def forward(self, x, mask=None):
        if not (torch.distributed.is_initialized() and torch.distributed.get_rank() == 1):
            return x
        position = torch.arange(x.shape[1], dtype=x.dtype, device=x.device)[None, :, None]
        return mask_output(x + 0.5 * position, mask, 1)


class RankOneBrokenDeepSets(EquivariantSequential):
    """DeepSets with :class:`RankOneBias` in front: equivariant on every rank but rank 1."""

    def __init__(self, in_channels: int, out_channels: int, out_order: int = 1) -> None:
        net = DeepSets(in_channels, out_channels, out_order, hidden=8, depth=2)
        super().__init__([RankOneBias(), *net.layers])


class RecordEquivariance(Callback):
    """Writes ``rank<r>.json``: every value of ``equivariance/*`` this rank saw logged."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        self.seen.append({k: float(v) for k, v in metrics.items() if k.startswith("equivariance/")})
        Path(f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


def run_ddp(args: list[str], cwd: Path, timeout: float = 150) -> subprocess.CompletedProcess:
    common = [
        "--config=argmax.yaml",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.logger=false",
        "--trainer.callbacks+=test_ddp.RecordEquivariance",
        "--model.init_args.net=test_ddp.RankOneBrokenDeepSets",
        "--data.init_args.batch_size=16",
        "--data.init_args.val_sets=64",
        "--data.init_args.val_sizes=[20]",
    ]
    return run_cli([*args[:1], *common, *args[1:]], cwd, timeout)


@pytest.mark.timeout(200)
def test_ddp_logs_the_same_max_on_both_ranks(tmp_path):
    result = run_ddp(["validate", "--equivariance.on_violation=log"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sync_dist" not in result.stderr  # the logged errors are already reduced
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1]
    # Only rank 1's model breaks the symmetry: rank 0 logs rank 1's error, so it was reduced.
    assert seen[0][-1]["equivariance/max_abs_error"] > 0.1
    assert seen[0][-1]["equivariance/max_rel_error"] > 1e-3


@pytest.mark.timeout(200)
def test_ddp_violation_on_one_rank_raises_on_all_without_hang(tmp_path):
    result = run_ddp(
        ["fit", "--equivariance.on_violation=raise", "--trainer.max_steps=2"], tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "EquivarianceViolation" in output
    assert "not equivariant on rank 1" in output  # rank 0 raised too, pointing at rank 1
    assert "RankOneBias 'net.layers.0'" in output  # the rank that broke it names the layer
