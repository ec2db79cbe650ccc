"""Image sources of the anomaly task, each read into :class:`~.pool.ImagePool` s.

- ``digits`` (default, offline): scikit-learn's handwritten digits, 1797 images of 1x8x8;
- ``mnist``, ``fashion_mnist`` (1x28x28), ``cifar10`` (3x32x32): torchvision datasets under
  ``root``, fetched with ``download=True``;
- ``celeba``: CelebA faces (attributes as labels), resized to ``image_size`` (64 by default);
- ``folder``: a ``torchvision.datasets.ImageFolder`` tree ``root/<class>/<image>``, resized to
  ``image_size`` (64 by default).

A source without files is a FileNotFoundError naming the folder searched and how to get them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .pool import ImagePool

__all__ = ["Source", "image_shape", "load_source"]

Source = Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba", "folder"]

FILE_SIZE = 64
"""Side of the square images of the sources read from image files (``celeba``, ``folder``)."""

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


def image_shape(source: str, image_size: int | None) -> tuple[int, int, int]:
    """``(C, H, W)`` of the images of ``source`` resized to ``image_size`` (None: native size).

    >>> image_shape("digits", None), image_shape("cifar10", 16), image_shape("folder", None)
    ((1, 8, 8), (3, 16, 16), (3, 64, 64))
    """
    channels, height, width = _NATIVE_SHAPE.get(source, (3, FILE_SIZE, FILE_SIZE))
    if image_size is not None:
        height = width = image_size
    return channels, height, width


def load_source(
    source: str, root: str, download: bool, image_size: int | None
) -> dict[str, ImagePool]:
    """The pools of a source: ``{"train": ..., "test": ...}`` (CelebA also ``"val"``), or
    ``{"all": ...}`` for a source without a test split.

    Raises a FileNotFoundError naming the folder searched and how to get the files.
    """
    loaders: dict[str, Callable[[], dict[str, ImagePool]]] = {
        "digits": lambda: _digits(image_size),
        "celeba": lambda: _celeba(root, download, image_size or FILE_SIZE),
        "folder": lambda: _folder(root, image_size or FILE_SIZE),
        **{
            name: (lambda name=name: _torchvision(name, root, download, image_size))
            for name in _TORCHVISION
        },
    }
    if source not in loaders:
        raise ValueError(f"source must be one of {', '.join(Source.__args__)}; got {source!r}")
    return loaders[source]()


def _digits(image_size: int | None) -> dict[str, ImagePool]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    return {"all": ImagePool(_resize(images, image_size), torch.as_tensor(digits.target))}


def _torchvision(
    source: str, root: str, download: bool, image_size: int | None
) -> dict[str, ImagePool]:
    """MNIST, Fashion-MNIST or CIFAR-10: their own train and test splits, held in memory."""
    import torchvision

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
        pools[split] = ImagePool(_resize(images, image_size), torch.as_tensor(data.targets))
    return pools


def _celeba(root: str, download: bool, size: int) -> dict[str, ImagePool]:
    """CelebA's train, valid and test splits, images read from files, attributes as labels."""
    import torchvision

    pools = {}
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        try:
            data = torchvision.datasets.CelebA(
                root,
                split=name,
                target_type="attr",
                transform=_file_transform(size),
                download=download,
            )
        except (RuntimeError, FileNotFoundError):
            raise _missing(
                "celeba",
                root,
                "put img_align_celeba/ and the list_*.txt files of CelebA there (the "
                "download from Google Drive is often refused), or try "
                "--data.init_args.download true",
            ) from None
        pools[split] = ImagePool(data, data.attr.bool())
    return pools


def _folder(root: str, size: int) -> dict[str, ImagePool]:
    """An ImageFolder tree ``root/<class>/<image>``, one class per folder, read from files."""
    import torchvision

    try:
        data = torchvision.datasets.ImageFolder(root, transform=_file_transform(size))
    except (FileNotFoundError, RuntimeError):
        raise _missing(
            "folder", root, "arrange the images as root/<class>/<image> (one folder per class)"
        ) from None
    return {"all": ImagePool(data, torch.as_tensor(data.targets))}


def _file_transform(size: int):
    import torchvision

    return torchvision.transforms.Compose(
        [
            torchvision.transforms.Resize(size),
            torchvision.transforms.CenterCrop(size),
            torchvision.transforms.ToTensor(),
        ]
    )


def _missing(source: str, root: str, hint: str) -> FileNotFoundError:
    where = Path(root).expanduser().resolve() / _FILES.get(source, "")
    return FileNotFoundError(f"{source}: no dataset files found in {where} (root={root!r}); {hint}")


def _resize(images: Tensor, size: int | None) -> Tensor:
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    dtype = images.dtype
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return out.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else out
