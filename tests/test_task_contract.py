"""The task contract: declarations checked when a task is built, torchmetrics metrics per
validation loader, non-vector elements through a per-element encoder, and the task in the docs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAUROC

from symlight.check import assert_equivariant
from symlight.core.rep import Rep
from symlight.groups import dihedral
from symlight.models import DeepSets, EncodedSet
from symlight.symmetry import SetSymmetry
from symlight.tasks import RingDataModule, SetTask, batch_loader
from symlight.training import SymmetricModule, build_network

pytestmark = pytest.mark.filterwarnings("ignore:Attribute .net. removed from hparams")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


def quiet_trainer(**kwargs) -> L.Trainer:
    options = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**{**options, **kwargs})


class Declared(SetTask):
    """A minimal task whose declarations the tests remove one at a time."""

    def __init__(self, drop: str = "", val_names=("",), extra_metric: bool = False) -> None:
        super().__init__()
        self.rep_out = Rep(1, order=1)
        self.element_shape = (1,)
        self.val_names = list(val_names)
        self.extra_metric = extra_metric
        if drop:
            setattr(self, drop, None)

    def batches(self, count: int, n: int = 6, seed: int = 0) -> list[dict]:
        gen = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(count):
            x = torch.rand(16, n, 1, generator=gen)
            y = x[..., 0] == x[..., 0].amax(1, keepdim=True)
            out.append({"x": x, "mask": torch.ones(16, n, dtype=torch.bool), "y": y})
        return out

    def train_dataloader(self):
        return batch_loader(self.batches(4))

    def val_dataloader(self):
        return [batch_loader(self.batches(2, n=6, seed=1)), batch_loader(self.batches(2, 20, 2))]

    def metrics(self):
        return {"acc": MeanMetric(), "auroc": BinaryAUROC()}

    def loss(self, output, batch):
        return nn.functional.binary_cross_entropy_with_logits(output[..., 0], batch["y"].float())

    def evaluate(self, output, batch):
        logits, y, mask = output[..., 0], batch["y"], batch["mask"]
        values = {
            "acc": y.gather(1, logits.argmax(1, keepdim=True)).squeeze(1).float(),
            "auroc": (logits[mask], y[mask].long()),
        }
        if self.extra_metric:
            values["typo"] = values["acc"]
        return values


def model_for(task: SetTask) -> SymmetricModule:
    return SymmetricModule(
        lambda i, o, k: DeepSets(i, o, k, hidden=8, depth=2),
        element_shape=task.element_shape,
        rep_out=task.rep_out,
    )


@pytest.mark.parametrize("attribute", ["rep_out", "element_shape"])
def test_a_missing_declaration_fails_when_the_task_is_built(attribute):
    with pytest.raises(TypeError, match=rf"Declared must set self\.{attribute} in __init__"):
        Declared(drop=attribute)


def test_a_task_without_rep_out_names_the_task_and_rep_out():
    class NoRep(SetTask):
        def __init__(self):
            super().__init__()
            self.element_shape = (1,)

        metrics = Declared.metrics
        loss = Declared.loss
        evaluate = Declared.evaluate

    with pytest.raises(TypeError, match=r"NoRep must set self\.rep_out in __init__: a .*Rep"):
        NoRep()


def test_malformed_declarations_name_the_task_and_the_attribute():
    class BadShape(Declared):
        def __init__(self):
            super().__init__()
            self.element_shape = 3  # not a tuple

    class TextRep(Declared):
        def __init__(self):
            super().__init__()
            self.rep_out = "1x1"  # the printed form, not a Rep

    class TwoSets(Declared):
        def __init__(self):
            super().__init__()
            self.rep_out = Rep(1, order=(1, 1))

    class BadInputs(Declared):
        inputs = {"x": 0}  # invariant inputs do not permute

    with pytest.raises(TypeError, match=r"BadShape.element_shape must be a non-empty tuple"):
        BadShape()
    with pytest.raises(TypeError, match=r"TextRep.rep_out must be a Rep, got str '1x1'"):
        TextRep()
    with pytest.raises(TypeError, match=r"TwoSets.rep_out must be over one set"):
        TwoSets()
    with pytest.raises(TypeError, match=r"BadInputs.inputs must map batch keys"):
        BadInputs()
    assert Declared().element_shape == (1,)


def test_symmetry_and_output_shape_are_derived_from_rep_out():
    task = Declared()
    assert task.symmetry == SetSymmetry(inputs={"x": 1}, out_order=1)
    assert (task.out_channels, task.out_order) == (1, 1)
    task.rep_out = Rep(3, order=0, group="cyclic(5)")
    assert task.symmetry == SetSymmetry(inputs={"x": 1}, out_order=0, group="cyclic(5)")
    assert (task.out_channels, task.out_order) == (3, 0)
    for derived in ("symmetry", "out_channels", "out_order"):
        with pytest.raises(TypeError, match=rf"Declared\.{derived} is derived from rep_out"):
            setattr(task, derived, None)


def test_the_ring_task_takes_its_group_from_its_own_size():
    task = RingDataModule(n=20)
    assert task.rep_out == Rep(1, order=1, group=dihedral(20))
    assert str(task.rep_out) == "1x1 @ D_20"
    assert task.rep_out.group == dihedral(20) and task.symmetry.group == dihedral(20)
    assert RingDataModule().rep_out.group == dihedral(16)


def test_fewer_val_names_than_loaders_is_a_clear_error():
    task = Declared(val_names=[""])
    with pytest.raises(ValueError, match=r"Declared has 1 val_names \[''\] but val loader 1"):
        quiet_trainer(max_epochs=1).fit(model_for(task), task)


def test_evaluating_a_metric_that_was_not_declared_is_a_clear_error():
    task = Declared(val_names=["", "@n=20"], extra_metric=True)
    with pytest.raises(KeyError, match=r"returned 'typo', which is not one of its metrics"):
        quiet_trainer(max_epochs=1).fit(model_for(task), task)


def test_torchmetrics_are_cloned_and_logged_per_validation_loader():
    task = Declared(val_names=["", "@n=20"])
    model = model_for(task)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, task)
    logged = trainer.callback_metrics
    for name in ("val/acc", "val/acc@n=20", "val/auroc", "val/auroc@n=20"):
        assert name in logged and 0.0 <= float(logged[name]) <= 1.0, name
    clones = [model.metrics[k] for k in ("val_auroc", "val_auroc@n=20", "test_auroc")]
    assert len({id(m) for m in clones}) == 3
    # the logged value is the metric over every element of the loader, recomputed here
    model.eval()
    scores, labels = [], []
    with torch.no_grad():
        for batch in task.val_dataloader()[1]:
            out = model(batch)[..., 0]
            scores.append(out.flatten())
            labels.append(batch["y"].flatten().long())
    expected = BinaryAUROC()(torch.cat(scores), torch.cat(labels))
    assert float(logged["val/auroc@n=20"]) == pytest.approx(float(expected), abs=1e-6)


class Pixels(nn.Module):
    """A per-element encoder for (1, 4, 4) images with batch statistics (a BatchNorm)."""

    def __init__(self, element_shape, out_channels: int = 5):
        super().__init__()
        self.out_channels = out_channels
        size = int(torch.tensor(element_shape).prod())
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, 8), nn.BatchNorm1d(8), nn.Tanh())
        self.head = nn.Linear(8, out_channels)

    def forward(self, x):
        return self.head(self.net(x))


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_encoded_image_sets_are_equivariant_in_float64_with_padding(train, n):
    torch.manual_seed(n)
    net = build_network(
        lambda i, o, k: DeepSets(i, o, k, hidden=6, depth=2, pooling="mean"),
        Pixels,
        (1, 4, 4),
        rep_out=Rep(2, order=1),
    ).double()
    assert isinstance(net, EncodedSet)
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(5, n + 2, 1, 4, 4, generator=gen, dtype=torch.float64)
    mask = torch.zeros(5, n + 2, dtype=torch.bool)
    mask[:, :n] = True
    mask[1, : max(1, n - 1)] = True
    x[~mask] = 1e6  # padded images never reach the encoder or its batch statistics
    batch = {"x": x, "mask": mask}
    result = assert_equivariant(net, batch, SetSymmetry({"x": 1}, out_order=1), train=train)
    assert result.max_abs_error < 1e-9
    with torch.no_grad():
        net.train(train)
        out = net(x, mask)
        again = net(torch.where(mask[..., None, None, None], x, -x), mask)
    assert torch.allclose(out, again, atol=1e-12) and torch.all(out[~mask] == 0)


def test_non_vector_elements_without_an_encoder_are_a_clear_error():
    with pytest.raises(ValueError, match=r"elements of shape \(1, 8, 8\) are not vectors"):
        SymmetricModule(lambda i, o, k: DeepSets(i, o, k), element_shape=(1, 8, 8))


def test_the_task_in_the_docs_trains():
    namespace: dict = {}
    task_code, train_code = doc_blocks()
    assert 30 <= len(task_code.splitlines()) <= 60
    exec(compile(task_code, str(DOCS), "exec"), namespace)
    torch.manual_seed(0)
    exec(compile(train_code, str(DOCS), "exec"), namespace)
    accuracy = float(namespace["trainer"].callback_metrics["val/acc"])
    assert accuracy > 0.8  # whole sets right; a constant answer gets none of them


@pytest.mark.timeout(240)
def test_the_plug_in_config_of_the_docs_runs_as_written_outside_the_repository(tmp_path):
    task_source = doc_blocks()[0]
    config = re.search(r"```yaml\n(# python -m symlight fit.*?)```", DOCS.read_text(), re.S)[1]
    (tmp_path / "above_mean.py").write_text(task_source)
    (tmp_path / "above_mean.yaml").write_text(config)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "symlight", "fit", "--config", "above_mean.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "run folder: lightning_logs/above_mean/version_0" in result.stdout
    table = result.stdout[result.stdout.index("\nmetric ") :]
    assert any(line.startswith("val/acc ") for line in table.splitlines())
