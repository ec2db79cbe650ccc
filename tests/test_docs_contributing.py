"""docs/contributing.md runs as written: its examples of a new layer, task and group execute in
order, print what their comments say, and the example layer is equivariant."""

import contextlib
import io
import re
from pathlib import Path

import torch

from symlight.check import assert_equivariant
from symlight.symmetry import SetSymmetry

DOC = Path(__file__).resolve().parent.parent / "docs" / "contributing.md"


def run_examples() -> tuple[dict, list[tuple[str, str]]]:
    """Execute the doc's python blocks in one namespace; pair each ``print(...)  # expected``
    with the line it printed."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict = {}
    checks = []
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102
        expected = [m.group(1) for m in re.finditer(r"^print\(.*\)\s+#\s*(.*)$", block, re.M)]
        checks += list(zip(out.getvalue().splitlines(), expected, strict=True))
    return namespace, checks


def test_the_contributing_examples_run_and_print_what_they_say():
    namespace, checks = run_examples()
    assert len(checks) == 3
    for printed, expected in checks:
        assert printed.startswith(expected.split(":")[0].strip()), (printed, expected)
    task = namespace["SumDataModule"]()
    batch = next(iter(task.train_dataloader()))
    assert batch["x"].shape == (32, 8, 1) and torch.allclose(batch["y"], batch["x"].sum((1, 2)))


def test_the_example_layer_breaks_the_check_when_it_is_wrong():
    namespace, _ = run_examples()
    layer = namespace["Centre"](2).double()
    layer.forward = lambda x, mask=None: x - x[:, :1]  # compares with the first element
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    try:
        assert_equivariant(
            layer, {"x": x, "mask": torch.ones(3, 5, dtype=torch.bool)}, SetSymmetry()
        )
    except AssertionError:
        return
    raise AssertionError("a layer that singles out the first element passed the check")
