"""Image sources of the anomaly task, each read into :class:`~.pool.ImagePool` s.

- ``digits`` (default, offline): scikit-learn's handwritten digits, 1797 images of 1x8x8;
- ``mnist``, ``fashion_mnist`` (1x28x28), ``cifar10`` (3x32x32): torchvision datasets under
  ``root``, fetched with ``download=True``;
- ``celeba``: CelebA faces (attributes as labels), resized to ``image_size`` (64 by default);
- ``folder``: a ``torchvision.datasets.ImageFolder`` tree ``root/<class>/<image>``, resized to
  ``image_size`` (64 by default).

A source without files is a FileNotFoundError naming the folder searched and how to get them. A
file that stops torchvision's loader is one error naming that file and what is wrong with it:
missing (FileNotFoundError), or truncated, changed (an MD5 sum that differs from the one
torchvision checks) or not in its format (ValueError). Images read from files (``celeba``,
``folder``) are decoded when a set first needs them; an unreadable one is then such an error.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

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

    name = _TORCHVISION[source]
    cls = getattr(torchvision.datasets, name)
    folder = _folder_of(source, root)
    files = _cifar_files(cls, folder) if source == "cifar10" else _mnist_files(cls, folder)
    hint = (
        "pass --data.init_args.download true to download them, or put the "
        f"torchvision {name} files there"
    )
    pools = {}
    for split, train in (("train", True), ("test", False)):
        data = _open(
            source, root, files, hint, lambda train=train: cls(root, train=train, download=download)
        )
        images, labels = torch.as_tensor(data.data), torch.as_tensor(data.targets)
        if len(images) != len(labels):
            raise ValueError(
                f"{source}: the {split} files in {folder} hold {len(images)} "
                f"images but {len(labels)} labels"
            )
        images = images[:, None] if images.dim() == 3 else images.permute(0, 3, 1, 2)
        pools[split] = ImagePool(_resize(images, image_size), labels)
    return pools


def _celeba(root: str, download: bool, size: int) -> dict[str, ImagePool]:
    """CelebA's train, valid and test splits, images read from files, attributes as labels."""
    import torchvision

    cls = torchvision.datasets.CelebA
    folder = _folder_of("celeba", root)
    files = [
        _File(folder / name, md5, "a CelebA list file")
        for _, md5, name in cls.file_list
        if not name.endswith((".zip", ".7z"))  # the images are read from img_align_celeba/
    ] + [_File(folder / "img_align_celeba")]
    hint = (
        "put img_align_celeba/ and the list_*.txt files of CelebA there (the download from "
        "Google Drive is often refused), or try --data.init_args.download true"
    )
    pools = {}
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        data = _open(
            "celeba",
            root,
            files,
            hint,
            lambda name=name: cls(
                root,
                split=name,
                target_type="attr",
                transform=_file_transform(size),
                download=download,
            ),
        )
        paths = [str(folder / "img_align_celeba" / f) for f in data.filename]
        pools[split] = ImagePool(_ImageFiles("celeba", data, paths), data.attr.bool())
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
    paths = [path for path, _ in data.samples]
    return {"all": ImagePool(_ImageFiles("folder", data, paths), torch.as_tensor(data.targets))}


# -- the files of each source, and what is wrong with one that stops its loader ------------------


@dataclass(frozen=True)
class _File:
    """A file (or folder) a torchvision dataset reads: the MD5 sum torchvision checks (None: not
    checked), and ``read``, a reader that fails on a truncated file or one in another format.
    """

    path: Path
    md5: str | None = None
    kind: str = ""
    read: Callable[[str], Any] | None = None

    def fault(self, source: str) -> Exception | None:
        """The error naming this file and what is wrong with it; None when nothing is."""
        from torchvision.datasets.utils import check_integrity

        if not self.path.exists():
            return FileNotFoundError(f"{source}: {self.path} is missing")
        if self.md5 is not None and not check_integrity(str(self.path), self.md5):
            return ValueError(
                f"{source}: {self.path} is truncated or changed: its MD5 sum is not the one "
                "torchvision expects; replace it with the original file"
            )
        if self.read is not None:
            try:
                self.read(str(self.path))
            except Exception as error:  # noqa: BLE001 - any failure of the reader is the fault
                return ValueError(
                    f"{source}: {self.path} is truncated or not {self.kind} ({_why(error)})"
                )
        return None


def _mnist_files(cls: type, folder: Path) -> list[_File]:
    """The four raw IDX files torchvision's MNIST and FashionMNIST read, uncompressed (the MD5 sums
    of ``cls.resources`` are those of the ``.gz`` downloads, which need not be kept).
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    files = []
    for url, _ in cls.resources:
        name = os.path.splitext(os.path.basename(url))[0]
        images = "-images-" in name
        kind = f"an IDX file of {'images' if images else 'labels'}"
        files.append(
            _File(folder / name, None, kind, read_image_file if images else read_label_file)
        )
    return files


def _cifar_files(cls: type, folder: Path) -> list[_File]:
    """The pickled batches and metadata torchvision's CIFAR10 reads, with its MD5 sums."""
    kind = "a pickled CIFAR-10 batch"
    files = [_File(folder / n, md5, kind, _unpickle) for n, md5 in cls.train_list + cls.test_list]
    return [*files, _File(folder / cls.meta["filename"], cls.meta["md5"], kind, _unpickle)]


def _unpickle(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _open(source: str, root: str, files: Sequence[_File], hint: str, make: Callable[[], Any]):
    """``make()``, a torchvision dataset; when it fails, the error naming the file at fault
    (FileNotFoundError with ``hint`` when there are no files at all).

    Raised outside the ``except`` block, so that the error chain holds no loader error whose
    message would be taken for the user's.
    """
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - torchvision's loaders fail in many ways
        failure = error
    if not any(f.path.exists() for f in files):
        raise _missing(source, root, hint) from None
    for f in files:
        fault = f.fault(source)
        if fault is not None:
            raise fault from None
    raise failure


class _ImageFiles(Dataset):
    """A torchvision dataset whose item ``i`` is read from the file ``paths[i]``: a file that
    cannot be read is an error naming it, not the image library's message alone.
    """

    def __init__(self, source: str, data: Dataset, paths: Sequence[str]) -> None:
        self.source, self.data, self.paths = source, data, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        try:
            return self.data[i]
        except (OSError, SyntaxError, ValueError) as error:  # PIL's, on missing or damaged files
            failure = error
        path = os.path.abspath(self.paths[i])
        if isinstance(failure, FileNotFoundError):
            raise FileNotFoundError(f"{self.source}: image {path} is missing") from None
        raise ValueError(
            f"{self.source}: image {path} is truncated or not an image ({_why(failure)})"
        ) from None


def _why(error: BaseException) -> str:
    """One line: the error's type and message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _folder_of(source: str, root: str) -> Path:
    return Path(root).expanduser().resolve() / _FILES.get(source, "")


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
    where = _folder_of(source, root)
    return FileNotFoundError(f"{source}: no dataset files found in {where} (root={root!r}); {hint}")


def _resize(images: Tensor, size: int | None) -> Tensor:
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    dtype = images.dtype
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return out.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else out
