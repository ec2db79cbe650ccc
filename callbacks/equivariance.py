"""EquivarianceCheck: how far the model is from the task's symmetry, at every validation."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from symlight.core.check import EquivarianceViolation, find_violation
from symlight.core.seeding import stream_seed
from symlight.core.symmetry import SetSymmetry

__all__ = ["EquivarianceCheck", "OnViolation"]

OnViolation = Literal["warn", "raise", "log"]


class EquivarianceCheck(Callback):
    """Measures, during validation, how far the model is from the task's symmetry (S_n, or the
    group the task's ``SetSymmetry`` names).

    The symmetry checked is the one the task declares (``trainer.datamodule.symmetry``, a
    :class:`~symlight.core.symmetry.SetSymmetry`): ``f(P·batch) = P·f(batch)`` for every permutation
    ``P`` of each set, with ``P`` acting on the inputs and on the output by their orders. Over
    several independent sets (a task whose rows and columns permute separately) ``P`` is one
    permutation per set, each set's generators are checked with the others fixed, and the batch's
    mask is a tuple of one mask per set. At the
    validation batches it selects, it runs :func:`symlight.core.check.equivariance_error` on the
    batch (the generators of the group plus ``num_samples`` random elements), in the dtype and
    precision context the model validates in, and at the end of each validation run logs

    - ``equivariance/max_abs_error``: ``max |f(P·x) - P·f(x)|`` over the checked batches;
    - ``equivariance/max_rel_error``: the same divided by ``max |f(x)|``.

    Under DDP each rank checks its own batches with its own random permutations; the values are
    reduced with one all-reduce (maximum) called on every rank, so every rank logs the same worst
    error and, with ``on_violation="raise"``, every rank raises together (none waits on another).
    After each validation run, ``last`` holds the reduced ``max_abs_error`` and ``max_rel_error``.

    Args:
        enabled: switch the check off without removing the callback.
        every_n_steps: check the validation batches whose index in their loader is a multiple of
            this; ``None`` (default) checks only the first batch of each validation loader.
        num_samples: random permutations per checked batch, on top of the two generators (of
            each set): a check costs ``3 + num_samples`` forward passes of ``num_sets`` sets
            (``1 + 2·k + num_samples`` over ``k`` independent sets).
        num_sets: check only the first this many sets of a batch (``None``: the whole batch).
        on_violation: when an error exceeds both tolerances: ``warn`` (a warning naming the first
            submodule whose output is not equivariant, the group element and the error),
            ``raise`` (an :class:`~symlight.core.check.EquivarianceViolation` with that message at the
            end of the validation run, on every rank) or ``log`` (only log the errors).
        atol: absolute tolerance; default by dtype (:data:`symlight.core.check.TOLERANCES`): that of
            the output, or the autocast dtype under mixed precision when it is less precise.
        rtol: relative tolerance; default as ``atol``.
        seed: seeds the permutations (offset by the process rank).

    """

    def __init__(
        self,
        enabled: bool = True,
        every_n_steps: int | None = None,
        num_samples: int = 1,
        num_sets: int | None = 8,
        on_violation: OnViolation = "warn",
        atol: float | None = None,
        rtol: float | None = None,
        seed: int = 0,
    ) -> None:
        if on_violation not in ("warn", "raise", "log"):
            raise ValueError(f"on_violation must be warn, raise or log; got {on_violation!r}")
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        if num_sets is not None and num_sets < 1:
            raise ValueError(f"num_sets must be >= 1 or None, got {num_sets}")
        for name, tol in (("atol", atol), ("rtol", rtol)):
            if tol is not None and tol < 0:
                raise ValueError(f"{name} must be >= 0, got {tol}")
        self.enabled = enabled
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.num_sets = num_sets
        self.on_violation = on_violation
        self.atol, self.rtol = atol, rtol
        self.seed = seed
        self.last: dict[str, float] = {}
        self._generator: torch.Generator | None = None
        self._reset()

    # -- state --------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._abs = self._rel = 0.0
        self._checked = 0
        self._message: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._generator = torch.Generator().manual_seed(stream_seed(self.seed, trainer.global_rank))

    def _due(self, batch_idx: int) -> bool:
        if self.every_n_steps is None:
            return batch_idx == 0
        return batch_idx % self.every_n_steps == 0

    def _symmetry(self, trainer: L.Trainer, pl_module: L.LightningModule) -> SetSymmetry | None:
        for owner in (pl_module, trainer.datamodule):
            symmetry = getattr(owner, "symmetry", None)
            if isinstance(symmetry, SetSymmetry):
                return symmetry
        rank_zero_warn(
            "EquivarianceCheck: neither the LightningModule nor the DataModule has a `symmetry` "
            "(a symlight.core.symmetry.SetSymmetry); the check is skipped. Use a symlight task or "
            "disable the check with --equivariance.enabled false."
        )
        return None

    def _subset(self, batch: Mapping[str, Any], symmetry: SetSymmetry) -> dict[str, Any]:
        """The first ``num_sets`` sets: every tensor whose first dim is the batch is sliced, and
        each mask of a batch over several sets (a tuple of one mask per set).
        """
        if self.num_sets is None:
            return dict(batch)
        first = batch.get("mask", batch.get(next(iter(symmetry.inputs), ""), None))
        if isinstance(first, (tuple, list)):
            first = next((m for m in first if isinstance(m, Tensor)), None)
        size = first.shape[0] if isinstance(first, Tensor) else None

        def cut(value: Any) -> Any:
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == size:
                return value[: self.num_sets]
            return value

        out = {key: cut(value) for key, value in batch.items()}
        if isinstance(batch.get("mask"), (tuple, list)):
            out["mask"] = tuple(cut(m) for m in batch["mask"])
        return out

    # -- hooks --------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.enabled or not self._due(batch_idx) or not isinstance(batch, Mapping):
            return
        symmetry = self._symmetry(trainer, pl_module)
        if symmetry is None:
            return
        if self._generator is None:
            self.setup(trainer, pl_module, "validate")
        subset = self._subset(batch, symmetry)
        with trainer.precision_plugin.val_step_context():
            result, message = find_violation(
                pl_module,
                subset,
                symmetry,
                self.num_samples,
                self._generator,
                atol=self.atol,
                rtol=self.rtol,
                compute_dtype=_autocast_dtype(pl_module.device),
                locate=self.on_violation != "log" and self._message is None,
            )
        self._abs = max(self._abs, result.max_abs_error)
        self._rel = max(self._rel, result.max_rel_error)
        self._checked += 1
        if message is None or self._message is not None:
            return
        where = f"rank {trainer.global_rank}, " if trainer.world_size > 1 else ""
        self._message = (
            f"EquivarianceCheck ({where}validation loader {dataloader_idx}, batch {batch_idx}): "
            + message
        )
        if self.on_violation == "warn":
            warnings.warn(self._message, stacklevel=2)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled:
            return
        world = trainer.world_size
        # Every rank reaches this hook once per validation run: one collective, same on all ranks.
        # The last entry encodes the lowest violating rank r as world - r (0: no violation).
        flag = float(world - trainer.global_rank) if self._message is not None else 0.0
        values = torch.tensor(
            [self._abs, self._rel, float(self._checked), flag],
            dtype=torch.float32,
            device=pl_module.device,
        )
        values = trainer.strategy.reduce(values, reduce_op="max")
        abs_err, rel_err, checked, code = values.cpu().tolist()
        if checked == 0:
            return
        self.last = {"max_abs_error": abs_err, "max_rel_error": rel_err}
        for name, value in (("max_abs_error", values[0]), ("max_rel_error", values[1])):
            # Already the maximum over ranks; sync_dist with "max" keeps it and tells Lightning
            # so (no warning about epoch-level values under DDP).
            pl_module.log(
                f"equivariance/{name}",
                value,
                on_step=False,
                on_epoch=True,
                batch_size=1,
                add_dataloader_idx=False,
                sync_dist=True,
                reduce_fx="max",
            )
        if code > 0 and self.on_violation == "raise":
            rank = world - int(code)
            if self._message is not None:
                raise EquivarianceViolation(self._message)
            raise EquivarianceViolation(
                f"EquivarianceCheck: the model is not equivariant on rank {rank} (max abs error "
                f"{abs_err:.3e}, relative {rel_err:.3e} over all ranks); that rank's message names "
                "the submodule, the group element and the error"
            )


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast computes in on ``device`` (mixed precision), or None when it is off."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return None
