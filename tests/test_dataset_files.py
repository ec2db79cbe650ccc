"""The anomaly task's file sources on tiny files in each dataset's real on-disk format, read by
torchvision's own dataset classes: the pools hold the pixels and labels written, a 20-step fit
runs on them, and a missing, truncated or corrupt file is one error naming it.

CIFAR-10 and CelebA: torchvision checks the MD5 sums of their files against the real dataset's,
which tiny files cannot have. The real classes are run on tiny files to test that check (an error
naming the file); the fits use a subclass that sets the public checksum tables to None (as
torchvision's own CIFAR100 subclasses CIFAR10 with its own tables), installed under the public
name ``torchvision.datasets.CIFAR10`` / ``CelebA`` for the test only. Everything else, reading
the files included, is torchvision's code.
"""

import functools
import math
import pickle
import re

import lightning as L
import numpy as np
import pytest
import torch
import torchvision
from lightning.pytorch.callbacks import Callback
from PIL import Image

from symlight.models import ConvEncoder, DeepSets
from symlight.tasks import SetAnomalyDataModule
from symlight.training import SymmetricModule

from conftest import fails, one_error_line, run_cli

pytestmark = [
    pytest.mark.filterwarnings("ignore:Attribute .(net|encoder). removed from hparams"),
    # fresh training batches are an iterable dataset with a length, loaded in-process
    pytest.mark.filterwarnings("ignore:Your `IterableDataset` has `__len__` defined"),
]

SMALL = {"set_size": 4, "val_sizes": [3], "val_sets": 8, "batch_size": 8}
"""Options small enough for a few dozen images and a fit of seconds."""

MNIST_RAW = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw"}


# -- writers of each format -----------------------------------------------------------------------


def write_idx(path, array: np.ndarray) -> None:
    """The IDX format of MNIST: 0, 0, type 8 (unsigned bytes), the number of dimensions, each
    size as a big-endian 32-bit integer, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root, source: str, train: int = 24, test: int = 12) -> dict:
    """Raw (uncompressed) IDX files as torchvision's MNIST / FashionMNIST read them; the images
    and labels written, by split. Three classes, images 28x28 of random pixels."""
    rng = np.random.default_rng(0)
    written = {}
    for split, prefix, count in (("train", "train", train), ("test", "t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 3
        write_idx(root / MNIST_RAW[source] / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / MNIST_RAW[source] / f"{prefix}-labels-idx1-ubyte", labels)
        written[split] = (images, labels)
    return written


def write_cifar(root, per_batch: int = 5, test: int = 10) -> dict:
    """CIFAR-10's python version: five pickled training batches, a test batch and the metadata,
    each a dict with ``data`` (N, 3072) uint8 rows (channel-major 32x32) and ``labels``."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {"train": [], "test": []}
    names = [(f"data_batch_{i}", "train", per_batch) for i in range(1, 6)]
    for name, split, count in [*names, ("test_batch", "test", test)]:
        data = rng.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 3, count)]
        batch = {"batch_label": name, "data": data, "labels": labels, "filenames": [""] * count}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[split].append((data.reshape(count, 3, 32, 32), np.array(labels)))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {split: tuple(map(np.concatenate, zip(*parts))) for split, parts in written.items()}


CELEBA_SPLITS = {"train": 16, "val": 8, "test": 8}


def celeba_colour(i: int) -> tuple[int, int, int]:
    """The colour of CelebA image ``i``: each image is one colour, which JPEG keeps to +-2."""
    return (7 * i, 250 - 7 * i, 100)


def write_celeba(root) -> dict:
    """CelebA's folder: img_align_celeba/*.jpg and the five list files (a count line, a header
    line for all but the partition and identities, then one row per image), 40 attributes of
    +-1. Returns the attributes (0/1) by split."""
    rng = np.random.default_rng(2)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names, partition, attrs = [], [], {}
    for part, (split, count) in enumerate(CELEBA_SPLITS.items()):
        attrs[split] = rng.integers(0, 2, (count, 40))
        for _ in range(count):
            i = len(names)
            names.append(f"{i + 1:06d}.jpg")
            pixels = np.full((12, 12, 3), celeba_colour(i), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "img_align_celeba" / names[-1], quality=95)
            partition.append(part)
    every = np.concatenate(list(attrs.values()))

    def table(name, header, rows):
        lines = [str(len(names)), " ".join(header)] if header else []
        lines += [f"{n} {' '.join(map(str, row))}" for n, row in zip(names, rows)]
        (folder / name).write_text("\n".join(lines) + "\n")

    table("list_eval_partition.txt", None, [[p] for p in partition])
    table("identity_CelebA.txt", None, [[i % 5 + 1] for i in range(len(names))])
    table("list_attr_celeba.txt", [f"attr{a}" for a in range(40)], 2 * every - 1)
    table(
        "list_bbox_celeba.txt",
        ["image_id", "x_1", "y_1", "width", "height"],
        [[0, 0, 12, 12]] * len(names),
    )
    landmarks = [
        f"{part}_{xy}"
        for part in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
        for xy in "xy"
    ]
    table("list_landmarks_align_celeba.txt", landmarks, [[6] * 10] * len(names))
    return attrs


def write_folder(root, size: int = 8) -> dict:
    """An ImageFolder tree of PNGs: root/<class>/<image>.png, three classes of ten images."""
    rng = np.random.default_rng(3)
    written = {}
    for label in ("a", "b", "c"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:02d}.png")
            written[(label, i)] = pixels
    return written


class CIFAR10WithoutChecksums(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10, its public tables of MD5 sums set to None (checked: exists)."""

    train_list = [[name, None] for name, _ in torchvision.datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in torchvision.datasets.CIFAR10.test_list]
    meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}


class CelebAWithoutChecksums(torchvision.datasets.CelebA):
    """torchvision's CelebA, its public table of MD5 sums set to None (checked: exists)."""

    file_list = [(key, None, name) for key, _, name in torchvision.datasets.CelebA.file_list]


# -- a 20-step fit --------------------------------------------------------------------------------


class StepRecorder(Callback):
    """The loss and the shape of ``x`` at every training step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.shapes: list[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        self.shapes.append(tuple(batch["x"].shape))


def fit_20_steps(task: SetAnomalyDataModule) -> StepRecorder:
    """Fits a small network for 20 steps; the steps' losses are finite, the batches' images of
    the task's declared element shape, and validation ran at every set size."""
    torch.manual_seed(0)
    model = SymmetricModule(
        functools.partial(DeepSets, hidden=8, depth=1, pooling="mean"),
        encoder=functools.partial(ConvEncoder, channels=(4,), out_channels=8),
        element_shape=task.element_shape,
        rep_out=task.rep_out,
        lr=1e-2,
    )
    recorder = StepRecorder()
    trainer = L.Trainer(
        max_steps=20,
        logger=False,
        callbacks=[recorder],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, task)
    assert trainer.global_step == 20 and len(recorder.losses) == 20
    assert all(math.isfinite(loss) for loss in recorder.losses), recorder.losses
    batch, n = task.batch_size, task.set_size
    assert set(recorder.shapes) == {(batch, n, *task.element_shape)}
    for name in ("val/loss", "val/acc", "val/acc@n=3", "val/auroc"):
        value = float(trainer.callback_metrics[name])
        assert math.isfinite(value) and (name == "val/loss" or 0 <= value <= 1), (name, value)
    return recorder


def all_images(pool) -> torch.Tensor:
    return pool.images(torch.arange(len(pool)))


# -- the sources on files in their real format ----------------------------------------------------


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist"])
def test_mnist_idx_files_are_read_by_torchvision_and_fit(tmp_path, source):
    written = write_mnist(tmp_path, source)
    task = SetAnomalyDataModule(source=source, root=str(tmp_path), batches_per_epoch=20, **SMALL)
    assert task.element_shape == (1, 28, 28)
    pools = task.pools
    for split, origin in (("train", "train"), ("val", "train"), ("test", "test")):
        images, labels = written[origin]
        index = pools[split].index.numpy()
        expected = torch.as_tensor(images[index], dtype=torch.float32)[:, None] / 255
        assert torch.equal(all_images(pools[split]), expected)
        assert torch.equal(pools[split].labels, torch.as_tensor(labels[index], dtype=torch.long))
    assert len(pools["train"]) + len(pools["val"]) == 24 and len(pools["test"]) == 12
    fit_20_steps(task)


def test_cifar10_pickled_batches_are_read_by_torchvision_and_fit(tmp_path, monkeypatch):
    written = write_cifar(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", CIFAR10WithoutChecksums)
    task = SetAnomalyDataModule(source="cifar10", root=str(tmp_path), batches_per_epoch=20, **SMALL)
    assert task.element_shape == (3, 32, 32)
    pools = task.pools
    for split, origin in (("train", "train"), ("val", "train"), ("test", "test")):
        images, labels = written[origin]
        index = pools[split].index.numpy()
        expected = torch.as_tensor(images[index], dtype=torch.float32) / 255
        assert torch.equal(all_images(pools[split]), expected)  # channel-major rows, as written
        assert torch.equal(pools[split].labels, torch.as_tensor(labels[index]))
    fit_20_steps(task)


def test_celeba_folder_and_list_files_are_read_by_torchvision_and_fit(tmp_path, monkeypatch):
    attrs = write_celeba(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "CelebA", CelebAWithoutChecksums)
    task = SetAnomalyDataModule(
        source="celeba", root=str(tmp_path), image_size=8, batches_per_epoch=20, **SMALL
    )
    assert task.element_shape == (3, 8, 8)
    first = 0
    for split, count in CELEBA_SPLITS.items():
        pool = task.pools[split]
        assert len(pool) == count
        assert torch.equal(pool.labels, torch.as_tensor(attrs[split], dtype=torch.bool))
        colours = torch.tensor([celeba_colour(first + i) for i in pool.index.tolist()]) / 255
        expected = colours[:, :, None, None].expand(count, 3, 8, 8)
        assert (all_images(pool) - expected).abs().max() <= 3 / 255  # JPEG keeps flat colours
        first += count
    fit_20_steps(task)


def test_an_image_folder_of_pngs_is_read_by_torchvision_and_fits(tmp_path):
    written = write_folder(tmp_path)
    task = SetAnomalyDataModule(
        source="folder", root=str(tmp_path), image_size=8, batches_per_epoch=20, **SMALL
    )
    # ImageFolder's order: classes sorted, then the files of each class sorted
    order = sorted(written)
    for split in ("train", "val", "test"):
        pool = task.pools[split]
        expected = np.stack([written[order[i]] for i in pool.index.tolist()])
        expected = torch.as_tensor(expected).permute(0, 3, 1, 2).float() / 255
        assert torch.equal(all_images(pool), expected)  # PNG is lossless; 8x8 kept as it is
        assert pool.labels.tolist() == ["abc".index(order[i][0]) for i in pool.index.tolist()]
    fit_20_steps(task)


# -- a missing, truncated or corrupt file is one error naming it ----------------------------------


def load(source: str, root, **options):
    return SetAnomalyDataModule(source=source, root=str(root), **SMALL, **options).pools


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("source", "damage", "file", "error", "says"),
    [
        (
            "mnist",
            truncate,
            "train-images-idx3-ubyte",
            ValueError,
            "truncated or not an IDX file of images (RuntimeError: shape",
        ),
        (
            "fashion_mnist",
            truncate,
            "t10k-labels-idx1-ubyte",
            ValueError,
            "truncated or not an IDX file of labels",
        ),
        (
            "mnist",
            lambda p: p.write_bytes(b"\x00\x00\x99\x03" + p.read_bytes()[4:]),
            "t10k-images-idx3-ubyte",
            ValueError,
            "not an IDX file of images (AssertionError)",
        ),
        ("mnist", lambda p: p.unlink(), "t10k-labels-idx1-ubyte", FileNotFoundError, "is missing"),
    ],
    ids=["truncated-images", "truncated-labels", "bad-header", "missing-labels"],
)
def test_a_damaged_idx_file_is_one_error_naming_it(tmp_path, source, damage, file, error, says):
    write_mnist(tmp_path, source)
    path = tmp_path / MNIST_RAW[source] / file
    damage(path)
    with pytest.raises(error) as info:
        load(source, tmp_path)
    assert str(info.value).startswith(f"{source}: {path} ") and says in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_idx_files_of_images_and_labels_that_disagree_are_one_error(tmp_path):
    images, _ = write_mnist(tmp_path, "mnist")["train"]
    write_idx(tmp_path / "MNIST/raw/train-labels-idx1-ubyte", np.zeros(len(images) - 1))
    with pytest.raises(
        ValueError, match=r"^mnist: the train files in .*MNIST/raw hold 24 images but 23 labels$"
    ):
        load("mnist", tmp_path)


def test_cifar10_files_that_are_not_the_originals_fail_torchvisions_checksum_by_name(tmp_path):
    """torchvision's own CIFAR10, checksums included: the first file whose sum differs is named."""
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    with pytest.raises(ValueError) as info:
        load("cifar10", tmp_path)
    assert str(info.value) == (
        f"cifar10: {path} is truncated or changed: its MD5 sum is not the one torchvision "
        "expects; replace it with the original file"
    )
    path.unlink()
    with pytest.raises(FileNotFoundError, match=f"^cifar10: {re.escape(str(path))} is missing$"):
        load("cifar10", tmp_path)


@pytest.mark.parametrize("file", ["data_batch_3", "test_batch", "batches.meta"])
def test_a_truncated_cifar10_pickle_is_one_error_naming_it(tmp_path, monkeypatch, file):
    write_cifar(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", CIFAR10WithoutChecksums)
    path = tmp_path / "cifar-10-batches-py" / file
    truncate(path)
    with pytest.raises(ValueError) as info:
        load("cifar10", tmp_path)
    message = str(info.value)
    assert message.startswith(f"cifar10: {path} is truncated or not a pickled CIFAR-10 batch (")
    assert "Error" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_celeba_list_files_are_checked_by_name(tmp_path, monkeypatch):
    write_celeba(tmp_path)
    attr = tmp_path / "celeba" / "list_attr_celeba.txt"
    with pytest.raises(
        ValueError, match=f"^celeba: {re.escape(str(attr))} is truncated or changed"
    ):
        load("celeba", tmp_path, image_size=8)  # torchvision's own CelebA checks the sums
    monkeypatch.setattr(torchvision.datasets, "CelebA", CelebAWithoutChecksums)
    attr.unlink()
    with pytest.raises(FileNotFoundError, match=f"^celeba: {re.escape(str(attr))} is missing$"):
        load("celeba", tmp_path, image_size=8)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_an_unreadable_celeba_jpg_is_one_error_naming_it(tmp_path, monkeypatch, damage):
    write_celeba(tmp_path)
    monkeypatch.setattr(torchvision.datasets, "CelebA", CelebAWithoutChecksums)
    path = tmp_path / "celeba" / "img_align_celeba" / "000003.jpg"  # the train split's third
    {
        "truncated": truncate,
        "garbage": lambda p: p.write_bytes(b"not a jpeg" * 50),
        "missing": lambda p: p.unlink(),
    }[damage](path)
    pool = load("celeba", tmp_path, image_size=8)["train"]
    assert pool.images(torch.tensor([0, 1])).shape == (2, 3, 8, 8)  # the others read well
    error = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(error) as info:
        pool.images(torch.tensor([3, 2]))
    says = "is missing" if damage == "missing" else "is truncated or not an image ("
    assert str(info.value).startswith(f"celeba: image {path} {says}")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_an_unreadable_png_of_an_image_folder_is_one_error_naming_it(tmp_path, damage):
    write_folder(tmp_path)
    path = tmp_path / "b" / "04.png"
    if damage == "truncated":
        truncate(path)
    else:
        path.write_bytes(b"\x89PNG garbage")
    pools = load("folder", tmp_path, image_size=8)
    with pytest.raises(ValueError) as info:
        for pool in pools.values():
            all_images(pool)
    assert str(info.value).startswith(f"folder: image {path} is truncated or not an image (")


# -- through the command line ---------------------------------------------------------------------


def test_a_truncated_mnist_file_ends_the_fit_command_with_one_line(tmp_path):
    write_mnist(tmp_path / "data", "mnist")
    path = tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    truncate(path, keep=0.9)
    result = run_cli(
        [
            "fit",
            "--config",
            "anomaly.yaml",
            "--data.init_args.source",
            "mnist",
            "--data.init_args.root",
            "data",
            "--trainer.max_steps",
            "20",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    line = one_error_line(result.stderr)
    assert line.startswith(f"symlight: error: mnist: {path} is truncated or not an IDX file")
    assert not list((tmp_path / "lightning_logs").rglob("version_*"))


def test_an_unreadable_png_ends_the_fit_command_with_one_line(tmp_path, monkeypatch, capsys):
    """Images are decoded when a set first needs them, here in the first validation."""
    write_folder(tmp_path / "images")
    path = tmp_path / "images" / "a" / "00.png"
    path.write_bytes(b"not a png")
    monkeypatch.chdir(tmp_path)
    small = [f"--data.init_args.{key}={value}" for key, value in SMALL.items()]
    line = fails(
        [
            "fit",
            "--config",
            "anomaly.yaml",
            "--data.init_args.source",
            "folder",
            "--data.init_args.root",
            "images",
            "--data.init_args.image_size=8",
            *small,
            "--trainer.max_steps=20",
        ],
        capsys,
    )
    assert line.startswith(f"symlight: error: folder: image {path} is truncated or not an image")
    assert not list((tmp_path / "lightning_logs").rglob("version_*"))
