"""Set anomaly detection on images: find the odd image out.

Each example is a set of ``set_size`` images in which all but one share a property and one does
not; the network returns one logit per element and the target is the position of the odd one
(``y``: ``(B, n)`` bool, True at the odd element). The loss is the cross-entropy of the softmax
over the set's real elements; the metrics are ``acc`` (fraction of sets whose highest logit is the
odd one; chance is ``1/n``) and ``auroc`` (element-level AUROC of the softmax probabilities over
all real elements of all sets; chance 0.5).

Sources (``source``), the property being the class unless said otherwise:

- ``digits`` (default, offline): scikit-learn's handwritten digits, 1797 images of 8x8;
- ``mnist``, ``fashion_mnist`` (1x28x28), ``cifar10`` (3x32x32): torchvision datasets under
  ``root``, fetched with ``download=True``;
- ``celeba``: CelebA faces resized to ``image_size``, the DeepSets protocol: each set draws two
  of the 40 attributes (among the pairs at least 16 images of the split share and some lack); the
  other elements have both, the odd one has neither;
- ``folder``: a ``torchvision.datasets.ImageFolder`` tree ``root/<class>/<image>``, resized to
  ``image_size``.

Images are scaled to ``[0, 1]``. Train, validation and test sets are drawn from disjoint images:
the source's own test split when it has one (else ``test_fraction`` of the images), and
``val_fraction`` of the remaining images for validation, chosen by ``seed``. Within a set the
shared-property elements are distinct images when the split holds enough of them, else drawn with
replacement (small splits, large sets). Training batches are drawn fresh from a generator seeded by
``seed``, the process rank and the epoch (saved in checkpoints); training images may be shifted by
up to ``shift`` pixels (zero fill). Validation and test sets are fixed per seed; extra ones at the
sizes ``val_sizes`` measure generalisation to set sizes never trained on (``val/acc@n=64``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchmetrics import Metric
from torchmetrics.aggregation import MeanMetric
from torchmetrics.classification import BinaryAUROC

from symlight.core.symmetry import SetSymmetry

from .base import FreshBatches, SetTask

__all__ = ["ImagePool", "SetAnomalyDataModule", "SetIndex", "Source", "load_source", "split_pools"]

Source = Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba", "folder"]

_MIN_SHARED = 16
_NATIVE_SHAPE = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}
_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_FILES = {
    "mnist": "MNIST/raw",
    "fashion_mnist": "FashionMNIST/raw",
    "cifar10": "cifar-10-batches-py",
    "celeba": "celeba",
}


@dataclass(frozen=True)
class SetIndex:
    """A batch of sets as positions into a pool: ``positions`` (B, n), ``y`` (B, n) bool."""

    positions: Tensor
    y: Tensor


# -- image pools ----------------------------------------------------------------------------------


class ImagePool:
    """Images with the property that defines the odd one out.

    ``labels`` is ``(N,)`` long (a class per image: the others share a class, the odd one has
    another) or ``(N, A)`` bool (attributes: the others share two attributes, the odd one has
    neither). ``images`` is an ``(N, C, H, W)`` tensor (uint8 in ``0..255`` or float in ``[0, 1]``),
    or a dataset whose item ``i`` is ``(image tensor, anything)`` for sources read from files.
    """

    def __init__(self, images: Tensor | Dataset, labels: Tensor, index: Tensor | None = None):
        self.source_images, self.labels_all = images, labels
        self.index = torch.arange(len(labels)) if index is None else index
        labels = labels[self.index]
        self.labels = labels
        if labels.dim() == 1:
            classes = labels.unique()
            self.members = [torch.nonzero(labels == c).flatten() for c in classes]
            if len(self.members) < 2:
                raise ValueError("an anomaly task needs images of at least two classes")
        else:
            attrs = labels.to(torch.float32)
            both = attrs.T @ attrs
            neither = (1 - attrs).T @ (1 - attrs)
            # pairs that enough images share (distinct images in a set of 16) and some lack
            ok = torch.triu((both >= 1) & (neither >= 1), diagonal=1)
            plenty = ok & (both >= _MIN_SHARED)
            self.pairs = torch.nonzero(plenty if plenty.any() else ok)
            if len(self.pairs) == 0:
                raise ValueError(
                    "no pair of attributes is shared by some images and absent in others"
                )
            self._pair_cache: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, positions: Tensor) -> ImagePool:
        """The pool of the images at ``positions`` (indices into this pool)."""
        return ImagePool(self.source_images, self.labels_all, self.index[positions])

    def images(self, positions: Tensor) -> Tensor:
        """Float images in ``[0, 1]`` at ``positions`` (any shape ``S``): ``(*S, C, H, W)``."""
        flat = self.index.index_select(0, positions.flatten())
        if isinstance(self.source_images, Tensor):
            out = self.source_images.index_select(0, flat)
            out = out.float() / 255 if out.dtype == torch.uint8 else out.float()
        else:
            out = torch.stack([self.source_images[int(i)][0] for i in flat]).float()
        return out.view(*positions.shape, *out.shape[1:])

    def draw_sets(self, batch_size: int, n: int, gen: torch.Generator) -> SetIndex:
        """``batch_size`` sets of ``n`` images, one odd one each at a uniformly random position."""
        if self.labels.dim() == 1:
            common, odd = self._draw_classes(batch_size, n - 1, gen)
        else:
            drawn = [self._draw_attributes(n - 1, gen) for _ in range(batch_size)]
            common = torch.stack([c for c, _ in drawn])
            odd = torch.cat([o for _, o in drawn])
        where = torch.randint(n, (batch_size,), generator=gen)
        slot = torch.arange(n)[None, :]
        skip = (slot - (slot > where[:, None]).long()).clamp(max=n - 2)
        positions = common.gather(1, skip)
        rows = torch.arange(batch_size)
        positions[rows, where] = odd
        y = torch.zeros(batch_size, n, dtype=torch.bool)
        y[rows, where] = True
        return SetIndex(positions, y)

    def _draw_classes(self, batch_size: int, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        if not hasattr(self, "_table"):
            counts = torch.tensor([len(m) for m in self.members])
            table = torch.zeros(len(counts), int(counts.max()), dtype=torch.long)
            for c, m in enumerate(self.members):
                table[c, : len(m)] = m
            self._counts, self._table = counts, table
        classes = len(self._counts)
        c = torch.randint(classes, (batch_size,), generator=gen)
        o = torch.randint(classes - 1, (batch_size,), generator=gen)
        o = o + (o >= c).long()
        count = self._counts[c][:, None]
        # distinct members: the k smallest of random keys over each class's members ...
        keys = torch.rand(batch_size, self._table.shape[1], generator=gen)
        keys = keys.masked_fill(torch.arange(self._table.shape[1])[None, :] >= count, 2.0)
        distinct = keys.topk(min(k, keys.shape[1]), dim=1, largest=False).indices
        # ... or, for classes with fewer than k members, drawn with replacement
        repeated = (torch.rand(batch_size, k, generator=gen) * count).long()
        if distinct.shape[1] < k:
            distinct = repeated
        slots = torch.where(count >= k, distinct, repeated)
        odd = (torch.rand(batch_size, generator=gen) * self._counts[o]).long()
        return self._table[c[:, None], slots], self._table[o, odd]

    def _draw_attributes(self, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        a, b = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=gen))].tolist()
        if (a, b) not in self._pair_cache:
            has_a, has_b = self.labels[:, a], self.labels[:, b]
            self._pair_cache[(a, b)] = (
                torch.nonzero(has_a & has_b).flatten(),
                torch.nonzero(~has_a & ~has_b).flatten(),
            )
        both, neither = self._pair_cache[(a, b)]
        return _pick(both, k, gen), _pick(neither, 1, gen)


def _pick(members: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """``k`` members, distinct when there are enough of them, else drawn with replacement."""
    if k <= len(members):
        return members[torch.randperm(len(members), generator=gen)[:k]]
    return members[torch.randint(len(members), (k,), generator=gen)]


def _missing(source: str, root: str, hint: str) -> FileNotFoundError:
    where = Path(root).expanduser().resolve() / _FILES.get(source, "")
    return FileNotFoundError(f"{source}: no dataset files found in {where} (root={root!r}); {hint}")


def load_source(
    source: str, root: str, download: bool, image_size: int | None
) -> dict[str, ImagePool]:
    """The pools of a source: ``{"train": ..., "test": ...}`` or ``{"all": ...}`` without a test split.

    Raises a FileNotFoundError naming the folder searched and how to get the files.
    """
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
        return {"all": ImagePool(_resize(images, image_size), torch.as_tensor(digits.target))}
    import torchvision

    if source in _TORCHVISION:
        cls = getattr(torchvision.datasets, _TORCHVISION[source])
        pools = {}
        for split, train in (("train", True), ("test", False)):
            try:
                data = cls(root, train=train, download=download)
            except RuntimeError:
                raise _missing(
                    source,
                    root,
                    "pass --data.init_args.download true to download them, or put the "
                    f"torchvision {_TORCHVISION[source]} files there",
                ) from None
            images = torch.as_tensor(data.data)
            images = images[:, None] if images.dim() == 3 else images.permute(0, 3, 1, 2)
            images = _resize(images, image_size)
            pools[split] = ImagePool(images, torch.as_tensor(data.targets))
        return pools
    size = image_size or 64
    transform = torchvision.transforms.Compose(
        [
            torchvision.transforms.Resize(size),
            torchvision.transforms.CenterCrop(size),
            torchvision.transforms.ToTensor(),
        ]
    )
    if source == "celeba":
        pools = {}
        for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
            try:
                data = torchvision.datasets.CelebA(
                    root, split=name, target_type="attr", transform=transform, download=download
                )
            except (RuntimeError, FileNotFoundError):
                raise _missing(
                    source,
                    root,
                    "put img_align_celeba/ and the list_*.txt files of CelebA there (the "
                    "download from Google Drive is often refused), or try "
                    "--data.init_args.download true",
                ) from None
            pools[split] = ImagePool(data, data.attr.bool())
        return pools
    if source == "folder":
        try:
            data = torchvision.datasets.ImageFolder(root, transform=transform)
        except (FileNotFoundError, RuntimeError):
            raise _missing(
                source, root, "arrange the images as root/<class>/<image> (one folder per class)"
            ) from None
        return {"all": ImagePool(data, torch.as_tensor(data.targets))}
    raise ValueError(f"source must be one of {', '.join(Source.__args__)}; got {source!r}")


def _resize(images: Tensor, size: int | None) -> Tensor:
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    dtype = images.dtype
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return out.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else out


def split_pools(
    pools: Mapping[str, ImagePool], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, ImagePool]:
    """Disjoint ``train``, ``val`` and ``test`` pools; the split is fixed by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    out = dict(pools)
    if "all" in out:
        everything = out.pop("all")
        order = torch.randperm(len(everything), generator=gen)
        n_test = round(test_fraction * len(everything))
        out["test"] = everything.subset(order[:n_test])
        out["train"] = everything.subset(order[n_test:])
    if "val" not in out:
        train = out["train"]
        order = torch.randperm(len(train), generator=gen)
        n_val = round(val_fraction * len(train))
        out["val"] = train.subset(order[:n_val])
        out["train"] = train.subset(order[n_val:])
    return out


# -- sets -----------------------------------------------------------------------------------------


def shift_images(x: Tensor, shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image of ``x`` (``(..., C, H, W)``) by up to ``shift`` pixels, zero fill."""
    if shift <= 0:
        return x
    shape = x.shape
    flat = x.reshape(-1, *shape[-3:])
    count, channels, height, width = flat.shape
    padded = F.pad(flat, (shift, shift, shift, shift)).flatten(2)
    dy = torch.randint(2 * shift + 1, (count, 1, 1), generator=gen)
    dx = torch.randint(2 * shift + 1, (count, 1, 1), generator=gen)
    rows = torch.arange(height)[None, :, None] + dy
    cols = torch.arange(width)[None, None, :] + dx
    index = (rows * (width + 2 * shift) + cols).flatten(1)[:, None, :]
    return padded.gather(2, index.expand(count, channels, -1)).reshape(shape)


class _FixedSets(Dataset):
    """Fixed sets, stored as positions and turned into images batch by batch."""

    def __init__(self, pool: ImagePool, batches: list[SetIndex]) -> None:
        self.pool, self.batches = pool, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        b = self.batches[i]
        return {"x": self.pool.images(b.positions), "mask": torch.ones_like(b.y), "y": b.y}


# -- the task -------------------------------------------------------------------------------------


class SetAnomalyDataModule(SetTask):
    """Sets of images, all but one sharing a property: find the odd one out.

    Symmetry: permuting a set's images permutes the per-element target (the odd one's position)
    the same way; the network returns one logit per element (order 1, one channel). See the module
    docstring for sources, splits and metrics.

    Args:
        source: ``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``, ``celeba`` or ``folder``.
        root: folder of the dataset files (not used by ``digits``).
        download: let torchvision download a missing dataset (in ``prepare_data``).
        image_size: resize images to ``image_size`` x ``image_size`` (``celeba`` and ``folder``
            default to 64; the others keep their native size unless given).
        set_size: images per training set (and per set of the first validation loader).
        val_sizes: extra validation and test sets of exactly these sizes.
        batch_size: sets per batch.
        batches_per_epoch: training batches per epoch (each one freshly drawn).
        val_sets: sets in each validation and test set.
        val_fraction: fraction of the training images held out for validation.
        test_fraction: fraction of the images held out for testing when the source has no test
            split (``digits``, ``folder``).
        shift: training images are translated by up to this many pixels (0: no augmentation).
        seed: seeds the splits, the fixed evaluation sets and the training sets.

    """

    def __init__(
        self,
        source: Source = "digits",
        root: str = "data",
        download: bool = False,
        image_size: int | None = None,
        set_size: int = 16,
        val_sizes: Sequence[int] = (8, 64),
        batch_size: int = 64,
        batches_per_epoch: int = 100,
        val_sets: int = 1000,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        shift: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in Source.__args__:
            raise ValueError(f"source must be one of {', '.join(Source.__args__)}; got {source!r}")
        if set_size < 2 or any(s < 2 for s in val_sizes):
            raise ValueError(
                f"sets need at least 2 images to have an odd one, got set_size={set_size}, "
                f"val_sizes={list(val_sizes)}"
            )
        if len({set_size, *val_sizes}) < 1 + len(val_sizes):
            raise ValueError(
                f"val_sizes must be distinct and differ from set_size={set_size}, got {list(val_sizes)}"
            )
        for name, value in (
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
            ("val_sets", val_sets),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not (
            0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1
        ):
            raise ValueError(
                "need 0 < val_fraction, test_fraction and val_fraction + test_fraction < 1, got "
                f"{val_fraction}, {test_fraction}"
            )
        if shift < 0 or (image_size is not None and image_size < 1):
            raise ValueError(f"need shift >= 0 and image_size >= 1, got {shift}, {image_size}")
        self.save_hyperparameters()
        self.source, self.root, self.download = source, root, download
        self.image_size = image_size
        if image_size is None and source in ("celeba", "folder"):
            self.image_size = 64
        self.set_size, self.val_sizes = set_size, [int(s) for s in val_sizes]
        self.batch_size, self.batches_per_epoch, self.val_sets = (
            batch_size,
            batches_per_epoch,
            val_sets,
        )
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.shift, self.seed = shift, seed

        channels, height, width = _NATIVE_SHAPE.get(source, (3, 64, 64))
        if self.image_size is not None:
            height = width = self.image_size
        self.symmetry = SetSymmetry(inputs={"x": 1}, out_order=1)
        self.element_shape = (channels, height, width)
        self.out_channels = 1
        self.val_names = [""] + [f"@n={s}" for s in self.val_sizes]
        self._pools: dict[str, ImagePool] | None = None
        self.train_batches = FreshBatches(self, self._draw_train, batches_per_epoch)
        self._fixed: dict[tuple[str, int], _FixedSets] = {}

    # -- data ---------------------------------------------------------------------------------
    def _draw_train(self, gen: torch.Generator) -> dict[str, Tensor]:
        pool = self.pools["train"]
        sets = pool.draw_sets(self.batch_size, self.set_size, gen)
        x = shift_images(pool.images(sets.positions), self.shift, gen)
        return {"x": x, "mask": torch.ones_like(sets.y), "y": sets.y}

    @property
    def pools(self) -> dict[str, ImagePool]:
        """The disjoint ``train``, ``val`` and ``test`` image pools (loaded on first use)."""
        if self._pools is None:
            pools = load_source(self.source, self.root, False, self.image_size)
            self._pools = split_pools(pools, self.val_fraction, self.test_fraction, self.seed)
        return self._pools

    def prepare_data(self) -> None:
        if self.download and self.source != "digits":
            load_source(self.source, self.root, True, self.image_size)

    def setup(self, stage: str) -> None:
        self.pools  # noqa: B018  (load now, so a missing dataset fails before training)

    def fixed_sets(self, split: str, n: int) -> _FixedSets:
        """The fixed sets of size ``n`` drawn from the ``split`` pool (``val`` or ``test``)."""
        key = (split, n)
        if key not in self._fixed:
            salt = {"val": 0, "test": 100, "predict": 200}[split] + n
            gen = self.fixed_generator(10_000 + salt)
            pool = self.pools["test" if split == "predict" else split]
            batches, count = [], self.val_sets
            while count > 0:
                size = min(self.batch_size, count)
                batches.append(pool.draw_sets(size, n, gen))
                count -= size
            self._fixed[key] = _FixedSets(pool, batches)
        return self._fixed[key]

    def _loaders(self, split: str) -> list[DataLoader]:
        sizes = [self.set_size, *self.val_sizes]
        return [DataLoader(self.fixed_sets(split, n), batch_size=None) for n in sizes]

    def train_dataloader(self) -> DataLoader:
        self.pools  # noqa: B018
        return DataLoader(self.train_batches, batch_size=None)

    def val_dataloader(self) -> list[DataLoader]:
        return self._loaders("val")

    def test_dataloader(self) -> list[DataLoader]:
        return self._loaders("test")

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.fixed_sets("predict", self.set_size), batch_size=None)

    # -- objective ----------------------------------------------------------------------------
    def metrics(self) -> dict[str, Metric]:
        return {"acc": MeanMetric(), "auroc": BinaryAUROC()}

    @staticmethod
    def _log_probs(output: Tensor, mask: Tensor) -> Tensor:
        logits = output.squeeze(-1).masked_fill(~mask, torch.finfo(output.dtype).min)
        return torch.log_softmax(logits, dim=1)

    def loss(self, output: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        log_p = self._log_probs(output, batch["mask"])
        return -(log_p * batch["y"]).sum(1).mean()

    def evaluate(self, output: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Any]:
        y, mask = batch["y"], batch["mask"]
        log_p = self._log_probs(output, mask)
        pick = log_p.argmax(1, keepdim=True)
        correct = y.gather(1, pick).squeeze(1).to(output.dtype)
        return {"acc": correct, "auroc": (log_p.exp()[mask], y[mask].long())}
