import pytest
import torch

from symlight.tasks import ArgmaxDataModule
from symlight.tasks.argmax import targets


def first(loader):
    return next(iter(loader))


def test_data_is_deterministic_per_seed():
    a, b, c = ArgmaxDataModule(seed=1), ArgmaxDataModule(seed=1), ArgmaxDataModule(seed=2)
    for key in ("x", "mask", "y"):
        assert torch.equal(first(a.train_dataloader())[key], first(b.train_dataloader())[key])
        assert torch.equal(first(a.val_dataloader()[1])[key], first(b.val_dataloader()[1])[key])
    assert not torch.equal(first(a.train_dataloader())["x"], first(c.train_dataloader())["x"])


def test_each_epoch_draws_fresh_batches_and_resumes_from_state():
    task = ArgmaxDataModule(batches_per_epoch=2)
    epoch0 = [b["x"] for b in task.train_dataloader()]
    epoch1 = [b["x"] for b in task.train_dataloader()]
    assert not torch.equal(epoch0[0], epoch1[0])
    resumed = ArgmaxDataModule(batches_per_epoch=2)
    resumed.load_state_dict(ArgmaxDataModule(batches_per_epoch=2).state_dict() | {"train_epoch": 1})
    assert torch.equal([b["x"] for b in resumed.train_dataloader()][0], epoch1[0])


def test_validation_sets_are_fixed_and_sized():
    task = ArgmaxDataModule(val_sizes=[30, 50], val_sets=200, batch_size=64)
    loaders = task.val_dataloader()
    assert task.val_names == ["", "@n=30", "@n=50"]
    assert [first(loader)["x"].shape[1] for loader in loaders] == [10, 30, 50]
    assert sum(b["x"].shape[0] for b in loaders[0]) == 200
    assert torch.equal(first(task.val_dataloader()[2])["x"], first(loaders[2])["x"])
    assert not torch.equal(first(task.test_dataloader()[0])["x"], first(loaders[0])["x"])


def test_variable_sizes_are_padded_with_zeros_and_masked():
    batch = first(ArgmaxDataModule(n_min=1, n_max=12, batch_size=256).train_dataloader())
    sizes = batch["mask"].sum(1)
    assert sizes.min() >= 1 and sizes.max() == batch["x"].shape[1] <= 12
    assert len(sizes.unique()) > 5
    assert torch.all(batch["x"][~batch["mask"]] == 0)
    assert torch.all(batch["y"][~batch["mask"]] == 0)


def test_targets_with_ties_follow_the_documented_rule():
    score = torch.tensor([[3.0, 1.0, 3.0, 2.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)  # 9.0 is padding
    assert targets(score, mask, "argmax")["y"].tolist() == [[True, False, True, False, False]]
    assert targets(score, mask, "max")["y"].tolist() == [3.0]
    assert targets(score, mask, "rank")["y"].tolist() == [[2, 0, 2, 1, 0]]
    assert targets(score, mask, "topk", k=1)["y"].tolist() == [[True, False, True, False, False]]
    assert targets(score, mask, "topk", k=3)["y"].tolist() == [[True, False, True, True, False]]


def test_singleton_sets():
    score, mask = torch.tensor([[-5.0]]), torch.tensor([[True]])
    assert targets(score, mask, "argmax")["y"].tolist() == [[True]]
    assert targets(score, mask, "rank")["y"].tolist() == [[0]]
    assert targets(score, mask, "max")["y"].tolist() == [-5.0]


def test_integer_values_and_vector_features():
    task = ArgmaxDataModule(values="integers", low=0, high=3, channels=1)
    x = first(task.train_dataloader())["x"]
    assert set(x.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    vec = ArgmaxDataModule(channels=4)
    batch = first(vec.train_dataloader())
    assert batch["x"].shape[-1] == 4 and vec.element_shape == (4,)
    assert torch.equal(
        batch["y"], targets(vec.sampler.score(batch["x"]), batch["mask"], "argmax")["y"]
    )


@pytest.mark.parametrize("target", ["argmax", "onehot", "max", "rank", "topk"])
def test_perfect_outputs_score_perfectly_and_loss_is_finite(target):
    task = ArgmaxDataModule(target=target, n_min=1, n_max=8, values="integers", low=0, high=4)
    batch = first(task.val_dataloader()[0])
    y, mask = batch["y"], batch["mask"]
    if target == "max":
        ideal = y[:, None]
    elif target == "rank":
        ideal = (y / (mask.sum(1, keepdim=True) - 1).clamp(min=1))[..., None]
    else:
        ideal = torch.where(y, 50.0, -50.0)[..., None]
    declared = task.metrics()
    for name, args in task.evaluate(ideal, batch).items():
        metric = declared[name]
        metric.update(*(args if isinstance(args, tuple) else (args,)))
        expect = 0.0 if name == "mae" else 1.0
        assert float(metric.compute()) == pytest.approx(expect, abs=1e-6), name
    assert task.loss(ideal, batch) < 1e-3
    wrong = -ideal
    assert torch.isfinite(task.loss(wrong, batch)) and task.loss(wrong, batch) > task.loss(
        ideal, batch
    )


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="target must be one of"):
        ArgmaxDataModule(target="median")
    with pytest.raises(ValueError, match="n_min <= n_max"):
        ArgmaxDataModule(n_min=5, n_max=3)
    with pytest.raises(ValueError, match="val_sizes"):
        ArgmaxDataModule(val_sizes=[0])
    with pytest.raises(ValueError, match="distinct"):
        ArgmaxDataModule(val_sizes=[20, 20])


def test_a_task_must_define_its_loss_and_metrics():
    from symlight.tasks import SetTask

    class Incomplete(SetTask):
        def loss(self, output, batch):
            return output.sum()

    with pytest.raises(TypeError, match="evaluate"):
        Incomplete()
