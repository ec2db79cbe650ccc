"""SetImageGrid: a picture of a few validation sets of images, with the target and the pick marked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import make_grid

__all__ = ["SetImageGrid", "set_image_grid", "with_legend"]

GREEN = (0.1, 0.8, 0.1)
RED = (0.9, 0.1, 0.1)
GREY = (0.35, 0.35, 0.35)


def set_image_grid(
    x: Tensor, mask: Tensor, target: Tensor, scores: Tensor, border: int = 3, min_size: int = 32
) -> Tensor:
    """One row per set: its images framed green when they are a target, red when picked wrongly.

    ``x``: ``(S, n, C, H, W)`` images in ``[0, 1]`` (C = 1 or 3); ``mask``, ``target``: ``(S, n)``
    bool; ``scores``: ``(S, n)`` (the pick is the highest-scoring real element). Padded elements
    are left black. Returns a ``(3, H', W')`` image for ``add_image``.
    """
    sets, n = x.shape[:2]
    images = x.detach().float().cpu().clamp(0, 1).flatten(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    scale = max(1, -(-min_size // images.shape[-1]))
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    mask, target = mask.detach().cpu(), target.detach().cpu().bool()
    low = torch.finfo(scores.dtype).min
    pick = scores.detach().masked_fill(~mask.to(scores.device), low).argmax(1).cpu()
    picked = torch.zeros(sets, n, dtype=torch.bool)
    picked[torch.arange(sets), pick] = True
    colour = torch.tensor(GREY).expand(sets, n, 3).clone()
    colour[picked & ~target] = torch.tensor(RED)
    colour[target] = torch.tensor(GREEN)
    framed = (
        colour.flatten(0, 1)[:, :, None, None]
        .expand(-1, -1, *[s + 2 * border for s in images.shape[-2:]])
        .clone()
    )
    framed[:, :, border:-border, border:-border] = images
    framed[~mask.flatten()] = 0.0
    return make_grid(framed, nrow=n, padding=2, pad_value=1.0)


LEGEND = ((GREEN, "the odd image out (target)"), (RED, "the network's pick, when wrong"))
"""What the frames mean: the caption drawn under the grid."""


def with_legend(grid: Tensor, font_size: int | None = None) -> Tensor:
    """``grid`` (``(3, H, W)`` in ``[0, 1]``) with a caption band under it saying what each frame
    colour means: a swatch and a line of text per entry of :data:`LEGEND`, side by side when the
    grid is wide enough, else one per line. A grid narrower than a line of the caption is widened
    with white. Returns a ``(3, H + h, W')`` image.

    TensorBoard shows an image scaled to its card (about 300 pixels wide), so the default font
    grows with the grid: ``W / 24`` pixels, at least 12, about 12 pixels as displayed.
    """
    if font_size is None:
        font_size = max(12, round(grid.shape[-1] / 24))
    font = ImageFont.load_default(size=font_size)
    pad, swatch = font_size // 2, font_size
    entries = [(colour, text, swatch + pad + font.getlength(text)) for colour, text in LEGEND]
    width = max(grid.shape[-1], 2 * pad + max(int(w) + 1 for *_, w in entries))
    grid = F.pad(grid.float(), (0, width - grid.shape[-1]), value=1.0)
    side_by_side = sum(w for *_, w in entries) + pad * (len(entries) + 2) <= width
    line = font_size + pad
    height = line + pad if side_by_side else line * len(entries) + pad
    band = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(band)
    x, y = pad, pad
    for colour, text, entry_width in entries:
        rgb = tuple(round(255 * c) for c in colour)
        draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=rgb)
        draw.text((x + swatch + pad, y + swatch / 2), text, fill="black", font=font, anchor="lm")
        if side_by_side:
            x += int(entry_width) + 2 * pad
        else:
            y += line
    caption = pil_to_tensor(band).float() / 255
    return torch.cat([grid, caption], dim=1)


class SetImageGrid(Callback):
    """Logs, at each validation, an image grid of the first ``num_sets`` sets of the first
    validation batch: one row per set, the target elements framed green and the network's pick
    (its highest per-element output) framed red when it is wrong, with a caption under the grid
    that says so (:func:`with_legend`).

    For tasks whose elements are images (``x``: ``(B, n, C, H, W)``), whose network returns one
    score per element and whose batch holds a per-element bool target under ``target``. Skipped
    during the sanity check, on ranks other than 0 and for loggers without ``add_image``
    (TensorBoard has it). The extra forward pass runs on ``num_sets`` sets in eval mode.

    Args:
        num_sets: sets shown (rows of the grid).
        target: batch key of the ``(B, n)`` bool target.
        tag: the image's name in TensorBoard.
        min_size: images are scaled up (nearest neighbour) to at least this many pixels wide.

    """

    def __init__(
        self, num_sets: int = 4, target: str = "y", tag: str = "val/sets", min_size: int = 32
    ) -> None:
        if num_sets < 1 or min_size < 1:
            raise ValueError(f"need num_sets >= 1 and min_size >= 1, got {num_sets}, {min_size}")
        self.num_sets, self.target, self.tag, self.min_size = num_sets, target, tag, min_size
        self._batch: dict[str, Tensor] | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Mapping[str, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx or dataloader_idx or trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._batch = {k: v[: self.num_sets] for k, v in batch.items() if isinstance(v, Tensor)}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        writers = [
            logger.experiment
            for logger in trainer.loggers
            if hasattr(getattr(logger, "experiment", None), "add_image")
        ]
        if not writers:
            return
        if batch["x"].dim() != 5 or self.target not in batch:
            raise ValueError(
                f"SetImageGrid needs image sets x (B, n, C, H, W) and a target {self.target!r}; "
                f"got x of shape {tuple(batch['x'].shape)} and keys {sorted(batch)}"
            )
        mask = batch.get("mask", torch.ones(batch["x"].shape[:2], dtype=torch.bool))
        precision = trainer.precision_plugin
        with torch.no_grad(), precision.forward_context():
            scores = pl_module(precision.convert_input(batch)).float()
        grid = set_image_grid(
            batch["x"], mask, batch[self.target], scores.reshape(mask.shape), min_size=self.min_size
        )
        grid = with_legend(grid)
        for writer in writers:
            writer.add_image(self.tag, grid, global_step=trainer.global_step)
