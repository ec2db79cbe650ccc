"""Set anomaly detection on images: the sets, the splits, the encoders under a set network, the
metrics per validation size, the image grid, and the metrics synced under two-process DDP."""

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from symlight.callbacks import SetImageGrid
from symlight.callbacks.images import GREEN, RED, set_image_grid, with_legend
from symlight.check import assert_equivariant, equivariance_error
from symlight.core.rep import Rep
from symlight.models import (
    ConvEncoder,
    DeepSets,
    EncodedSet,
    EquivariantNetwork,
    MLPEncoder,
    PooledBaseline,
)
from symlight.symmetry import SetSymmetry
from symlight.tasks import SetAnomalyDataModule
from symlight.tasks.anomaly import ImagePool, shift_images
from symlight.training import SymmetricModule, build_network

from conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore:Attribute .(net|encoder). removed from hparams")

SYMMETRY = SetSymmetry({"x": 1}, out_order=1)


def first(loader):
    return next(iter(loader))


def check_sets(pool: ImagePool, positions: torch.Tensor, y: torch.Tensor) -> None:
    """Exactly one odd element per set, at the target, of another class than all the others."""
    assert torch.all(y.sum(1) == 1)
    labels = pool.labels[positions]
    odd = labels[y]
    common = labels[~y].view(len(y), -1)
    assert torch.all(common == common[:, :1])
    assert torch.all(odd != common[:, 0])


# -- the sets -------------------------------------------------------------------------------------


def test_each_set_has_exactly_one_odd_image_at_its_target():
    task = SetAnomalyDataModule(batch_size=32, val_sets=100, val_sizes=[8, 64])
    gen = torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("val", 64), ("test", 3)):
        sets = task.pools[split].draw_sets(1000, n, gen)
        check_sets(task.pools[split], sets.positions, sets.y)
        # positions of the odd one cover the whole set (uniform)
        assert len(sets.y.float().argmax(1).unique()) == n
    batch = first(task.val_dataloader()[2])
    assert batch["x"].shape == (32, 64, 1, 8, 8) and batch["mask"].all()
    assert 0 <= batch["x"].min() and batch["x"].max() <= 1 and batch["x"].max() > 0.9
    assert torch.all(batch["y"].sum(1) == 1)


def test_within_a_set_images_are_distinct_when_the_split_has_enough():
    task = SetAnomalyDataModule()
    sets = task.pools["train"].draw_sets(100, 16, torch.Generator().manual_seed(1))
    assert all(len(row.unique()) == 16 for row in sets.positions)


def test_small_classes_are_drawn_with_replacement():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    pool = ImagePool(torch.rand(6, 1, 2, 2), labels)
    sets = pool.draw_sets(50, 10, torch.Generator().manual_seed(0))
    check_sets(pool, sets.positions, sets.y)


def test_splits_are_disjoint_and_fixed_by_the_seed():
    task = SetAnomalyDataModule(val_fraction=0.25, test_fraction=0.2)
    index = {k: set(p.index.tolist()) for k, p in task.pools.items()}
    assert not index["train"] & index["val"] and not index["train"] & index["test"]
    assert not index["val"] & index["test"]
    assert sum(len(v) for v in index.values()) == 1797  # scikit-learn's digits, all used
    assert len(index["test"]) == round(0.2 * 1797)
    again = SetAnomalyDataModule(val_fraction=0.25, test_fraction=0.2).pools
    other = SetAnomalyDataModule(val_fraction=0.25, test_fraction=0.2, seed=1).pools
    assert torch.equal(again["val"].index, task.pools["val"].index)
    assert not torch.equal(other["val"].index, task.pools["val"].index)


def test_data_is_deterministic_per_seed_and_fresh_per_epoch():
    a, b = SetAnomalyDataModule(batches_per_epoch=2), SetAnomalyDataModule(batches_per_epoch=2)
    c = SetAnomalyDataModule(batches_per_epoch=2, seed=3)
    for key in ("x", "y"):
        assert torch.equal(first(a.val_dataloader()[1])[key], first(b.val_dataloader()[1])[key])
        assert torch.equal(first(a.test_dataloader()[0])[key], first(b.test_dataloader()[0])[key])
    assert not torch.equal(first(a.val_dataloader()[0])["x"], first(c.val_dataloader()[0])["x"])
    assert not torch.equal(first(a.val_dataloader()[0])["x"], first(a.test_dataloader()[0])["x"])
    epoch0 = [batch["x"] for batch in a.train_dataloader()]
    epoch1 = [batch["x"] for batch in a.train_dataloader()]
    assert torch.equal(epoch0[0], first(b.train_dataloader())["x"])
    assert not torch.equal(epoch0[0], epoch1[0])
    resumed = SetAnomalyDataModule(batches_per_epoch=2)
    resumed.load_state_dict(a.state_dict() | {"train_epoch": 1})
    assert torch.equal(first(resumed.train_dataloader())["x"], epoch1[0])


def test_validation_sizes_and_names():
    task = SetAnomalyDataModule(set_size=10, val_sizes=[4, 30], val_sets=70, batch_size=32)
    assert task.val_names == ["", "@n=4", "@n=30"]
    loaders = task.val_dataloader()
    assert [first(loader)["x"].shape[1] for loader in loaders] == [10, 4, 30]
    assert sum(batch["x"].shape[0] for batch in loaders[0]) == 70
    assert task.element_shape == (1, 8, 8) and task.rep_out == Rep(1, order=1)
    assert task.out_channels == 1 and task.out_order == 1 and task.symmetry == SYMMETRY
    with pytest.raises(ValueError, match="val_sizes must be distinct and differ from set_size"):
        SetAnomalyDataModule(set_size=16, val_sizes=[16])


def test_shifts_translate_images_within_the_bound():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 1, 8, 8)
    x[:, 0, 3, 4] = 1.0
    assert torch.equal(shift_images(x, 0, gen), x)
    moved = shift_images(x, 2, gen)
    assert torch.all(moved.sum((1, 2, 3)) == 1)  # the pixel moved, nothing else appeared
    where = moved[:, 0].flatten(1).argmax(1)
    dy, dx = where // 8 - 3, where % 8 - 4
    assert dy.abs().max() == 2 and dx.abs().max() == 2
    assert len(set(zip(dy.tolist(), dx.tolist()))) == 25


def test_celeba_protocol_two_shared_attributes_and_an_odd_one_with_neither():
    gen = torch.Generator().manual_seed(0)
    attrs = torch.rand(400, 6, generator=gen) < 0.5
    pool = ImagePool(torch.rand(400, 3, 4, 4), attrs)
    sets = pool.draw_sets(100, 8, gen)
    for row, target in zip(sets.positions, sets.y):
        common, odd = attrs[row[~target]], attrs[row[target]][0]
        shared_by_all = common.all(0) & ~odd
        assert shared_by_all.sum() >= 2  # a pair of attributes all others have, the odd one lacks


# -- sources from files ---------------------------------------------------------------------------


def test_a_missing_torchvision_dataset_is_one_clear_error(tmp_path):
    task = SetAnomalyDataModule(source="mnist", root=str(tmp_path))
    assert task.element_shape == (1, 28, 28)
    with pytest.raises(FileNotFoundError) as info:
        task.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "--data.init_args.download true" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_image_folder_is_a_source(tmp_path):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for label in ("a", "b", "c"):
        (tmp_path / label).mkdir()
        for i in range(10):
            pixels = (torch.rand(12, 12, 3, generator=gen) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    task = SetAnomalyDataModule(
        source="folder", root=str(tmp_path), image_size=8, set_size=4, val_sizes=[3], val_sets=4
    )
    assert task.element_shape == (3, 8, 8)
    batch = first(task.train_dataloader())
    assert batch["x"].shape == (64, 4, 3, 8, 8)
    val = first(task.val_dataloader()[1])
    check_sets(task.pools["val"], task.fixed_sets("val", 3).batches[0].positions, val["y"])
    with pytest.raises(
        FileNotFoundError, match=r"folder: no dataset files found in .*root/<class>"
    ):
        SetAnomalyDataModule(source="folder", root=str(tmp_path / "none")).setup("fit")


# -- networks -------------------------------------------------------------------------------------


SET_NETWORKS = {
    "deepsets": functools.partial(DeepSets, hidden=8, depth=2, pooling="mean"),
    # anomaly.yaml's: each image's mean scaled cosine similarity to the set
    "similarity": functools.partial(
        EquivariantNetwork,
        head=False,
        layers=[
            {"layer": "similarity", "channels": 1, "dim": 5, "scale": -10.0},
            {"layer": "reduce", "reduce": "mean"},
        ],
    ),
}


def image_net(norm: str, element_shape=(1, 8, 8), net: str = "deepsets") -> EncodedSet:
    return build_network(
        SET_NETWORKS[net],
        functools.partial(ConvEncoder, channels=(4, 8), out_channels=6, norm=norm, groups=2),
        element_shape,
        rep_out=Rep(1, order=1),
    )


def padded_images(n: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4, n + 3, 1, 8, 8, generator=gen, dtype=torch.float64)
    mask = torch.zeros(4, n + 3, dtype=torch.bool)
    mask[:, :n] = True
    mask[1, : max(1, n - 2)] = True
    return {"x": x.masked_fill(~mask[..., None, None, None], 1e6), "mask": mask}


@pytest.mark.parametrize("net", list(SET_NETWORKS))
@pytest.mark.parametrize("norm", ["group", "layer", "batch", "none"])
@pytest.mark.parametrize("train", [False, True])
def test_encoder_under_a_set_network_is_equivariant_in_float64(norm, train, net):
    torch.manual_seed(0)
    net = image_net(norm, net=net).double()
    for n in (1, 4, 9):
        result = assert_equivariant(net, padded_images(n, seed=n), SYMMETRY, train=train)
        assert result.max_abs_error < 1e-9


@pytest.mark.parametrize("net", list(SET_NETWORKS))
@pytest.mark.parametrize("norm", ["group", "batch"])
def test_padded_images_never_change_real_outputs(norm, net):
    torch.manual_seed(0)
    net = image_net(norm, net=net).double().train()
    batch = padded_images(5, seed=0)
    out = net(batch["x"], batch["mask"])
    noise = torch.randn_like(batch["x"]) * 100
    other = torch.where(batch["mask"][..., None, None, None], batch["x"], noise)
    assert torch.allclose(net(other, batch["mask"]), out, atol=1e-12)
    assert torch.all(out[~batch["mask"]] == 0)
    unpadded = net(batch["x"][:1, :5], batch["mask"][:1, :5])  # the same set without padding
    if norm == "group":  # batch statistics differ between the two batches
        assert torch.allclose(unpadded, out[:1, :5], atol=1e-12)


def test_encoders_shapes_and_errors():
    enc = ConvEncoder((3, 32, 32), channels=(8, 8, 8), out_channels=5, head="avg")
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 5) and enc.out_channels == 5
    assert MLPEncoder((1, 4, 4), out_channels=3)(torch.rand(7, 1, 4, 4)).shape == (7, 3)
    with pytest.raises(ValueError, match=r"shape \(C, H, W\), got \(5,\): use MLPEncoder"):
        ConvEncoder((5,))
    with pytest.raises(ValueError, match=r"built for elements of shape \(1, 8, 8\)"):
        ConvEncoder((1, 8, 8))(torch.rand(2, 1, 9, 9))


def test_the_pooled_baseline_is_not_equivariant():
    torch.manual_seed(0)
    net = build_network(
        functools.partial(PooledBaseline, n=16, hidden=16),
        functools.partial(ConvEncoder, channels=(4,), out_channels=6),
        (1, 8, 8),
        Rep(1, order=1),
    ).double()
    batch = padded_images(6, seed=0)
    out = net(batch["x"], batch["mask"])
    assert out.shape == (4, 9, 1) and torch.all(out[~batch["mask"]] == 0)
    assert equivariance_error(net, batch, SYMMETRY).max_abs_error > 1e-4
    with pytest.raises(ValueError, match="at most n=16"):
        net(torch.rand(1, 17, 1, 8, 8, dtype=torch.float64))


# -- loss and metrics -----------------------------------------------------------------------------


def test_loss_and_metrics_of_perfect_and_uniform_outputs():
    task = SetAnomalyDataModule(val_sets=64, batch_size=64)
    batch = first(task.val_dataloader()[0])
    perfect = torch.where(batch["y"], 10.0, -10.0)[..., None]
    values = task.evaluate(perfect, batch)
    assert torch.all(values["acc"] == 1)
    scores, labels = values["auroc"]
    assert scores.shape == labels.shape == (64 * 16,) and labels.sum() == 64
    assert float(task.metrics()["auroc"](scores, labels)) == 1.0
    assert float(task.loss(perfect, batch)) < 1e-6
    uniform = torch.zeros(64, 16, 1)
    assert float(task.loss(uniform, batch)) == pytest.approx(float(torch.log(torch.tensor(16.0))))
    # padded elements are never picked and never enter the softmax
    mask = batch["mask"].clone()
    mask[:, -1] = False
    y = batch["y"] & mask
    y[~y.any(1), 0] = True
    padded = {**batch, "mask": mask, "y": y}
    high_padding = torch.where(mask, 0.0, 100.0)[..., None]
    assert float(task.loss(high_padding, padded)) == pytest.approx(
        float(torch.log(torch.tensor(15.0)))
    )
    assert task.evaluate(high_padding, padded)["auroc"][0].shape == (64 * 15,)


# -- training -------------------------------------------------------------------------------------


class Recorder(Callback):
    """Keeps every value of ``val/*`` logged at each validation end."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        self.seen.append({k: float(v) for k, v in metrics.items() if k.startswith("val/")})


def tiny_model(task: SetAnomalyDataModule) -> SymmetricModule:
    return SymmetricModule(
        functools.partial(DeepSets, hidden=16, depth=2, pooling="mean"),
        encoder=functools.partial(ConvEncoder, channels=(8,), out_channels=16),
        element_shape=task.element_shape,
        rep_out=task.rep_out,
        lr=1e-2,
    )


def test_a_tiny_fit_beats_chance_and_logs_each_validation_size(tmp_path):
    torch.manual_seed(0)
    task = SetAnomalyDataModule(
        batch_size=32, batches_per_epoch=40, val_sets=128, val_sizes=[8, 40]
    )
    recorder = Recorder()
    trainer = L.Trainer(
        max_epochs=1,
        logger=TensorBoardLogger(str(tmp_path), name="anomaly"),
        callbacks=[recorder, SetImageGrid(num_sets=3)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
    )
    trainer.fit(tiny_model(task), task)
    logged = recorder.seen[-1]
    for suffix in ("", "@n=8", "@n=40"):
        for name in ("acc", "auroc", "loss"):
            assert f"val/{name}{suffix}" in logged, f"val/{name}{suffix}"
    assert logged["val/acc"] > 3 / 16  # chance is 1/16
    assert logged["val/acc@n=40"] > 3 / 40
    assert logged["val/auroc"] > 0.6  # chance is 0.5
    # one image grid per validation, none for the sanity check
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "anomaly" / "version_0"))
    events.Reload()
    images = events.Images("val/sets")
    assert len(images) == 1
    grid_height = 3 * 40 + 2  # three sets of 16 images framed to 40 px, and the caption under them
    assert images[0].width == 16 * 40 + 2 and images[0].height > grid_height


def test_the_similarity_head_learns_the_odd_one_out_within_40_steps():
    """anomaly.yaml's set network, on a small encoder: no plateau to leave first."""
    torch.manual_seed(0)
    task = SetAnomalyDataModule(batch_size=32, batches_per_epoch=40, val_sets=128, val_sizes=[40])
    model = SymmetricModule(
        SET_NETWORKS["similarity"],
        encoder=functools.partial(ConvEncoder, channels=(8,), out_channels=16),
        element_shape=task.element_shape,
        rep_out=task.rep_out,
        lr=1e-2,
    )
    recorder = Recorder()
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        callbacks=[recorder],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, task)
    logged = recorder.seen[-1]
    assert logged["val/acc"] > 0.8  # chance 1/16; DeepSets (hidden 16) is at about 0.5 here
    assert logged["val/acc@n=40"] > 0.7  # chance 1/40


def test_image_grid_marks_the_target_green_and_a_wrong_pick_red():
    x = torch.full((2, 3, 1, 4, 4), 0.5)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    y = torch.tensor([[False, True, False], [True, False, False]])
    scores = torch.tensor([[0.0, 5.0, 1.0], [0.0, 1.0, 9.0]])  # set 1: padding scores highest
    grid = set_image_grid(x, mask, y, scores, border=2, min_size=4)
    size = 4 + 2 * 2

    def corner(row: int, col: int) -> tuple:
        top, left = 2 + row * (size + 2), 2 + col * (size + 2)
        return tuple(round(v, 2) for v in grid[:, top, left].tolist())

    green, red = tuple(round(v, 2) for v in GREEN), tuple(round(v, 2) for v in RED)
    assert corner(0, 1) == green and corner(0, 0) != red
    assert corner(1, 0) == green and corner(1, 1) == red  # pick among real elements only
    assert corner(1, 2) == (0.0, 0.0, 0.0)  # padding is black


def test_image_grid_caption_says_what_the_frames_mean():
    grid = torch.full((3, 40, 400), 0.5)
    captioned = with_legend(grid)
    assert captioned.shape[-1] == 400 and captioned.shape[1] > 40
    assert torch.equal(captioned[:, :40], grid)
    caption = captioned[:, 40:]
    for colour in (GREEN, RED):  # a swatch of each frame colour
        swatch = (caption - torch.tensor(colour)[:, None, None]).abs().amax(0) < 0.01
        assert swatch.sum() >= 64
    assert (caption.amax(0) < 0.3).sum() > 100  # dark text on the white band
    # a grid too narrow for a line of text is widened with white, never cropped
    narrow = with_legend(torch.zeros(3, 40, 60))
    assert narrow.shape[-1] > 60 and (narrow[:, :40, 60:] == 1).all()


class RecordMetrics(Callback):
    """Writes ``rank<r>.json``: the ``val/*`` values this rank saw at each validation end."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        seen = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}
        self.seen.append({**seen, "batches": list(trainer.num_val_batches)})
        Path(f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


@pytest.mark.timeout(240)
def test_ddp_syncs_the_task_metrics_across_two_processes(tmp_path):
    result = run_cli(
        [
            "fit",
            "--config=anomaly.yaml",
            "--trainer.accelerator=cpu",
            "--trainer.devices=2",
            "--trainer.strategy=ddp",
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--trainer.logger=false",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.callbacks+=test_anomaly.RecordMetrics",
            "--model.init_args.encoder.init_args.channels=[8]",
            "--model.init_args.encoder.init_args.out_channels=8",
            "--data.init_args.batch_size=16",
            "--data.init_args.batches_per_epoch=3",
            "--data.init_args.val_sets=64",
            "--data.init_args.val_sizes=[8]",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # each rank validates half of the sets (2 of 4 batches); the figures are over both halves
    assert seen[0][-1]["batches"] == [2, 2]
    assert seen[0] == seen[1]
    for name in ("val/acc", "val/auroc", "val/acc@n=8", "val/auroc@n=8"):
        assert name in seen[0][-1], name
