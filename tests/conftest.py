import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


def run_cli(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``python -m symlight ARGS`` in ``cwd`` as a separate process.

    The tests folder is importable (configs may name test classes), each process uses one torch
    thread (DDP runs start several on 2 cores) and no rank is inherited from a launcher.
    """
    here = str(Path(__file__).parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("LOCAL_RANK", None)
    return subprocess.run(
        [sys.executable, "-m", "symlight", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TINY = [
    "--trainer.max_epochs=1",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--data.init_args.batches_per_epoch=5",
    "--data.init_args.val_sets=64",
    "--data.init_args.val_sizes=[20]",
]


def scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [s.value for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def one_error_line(stderr: str) -> str:
    """The single error line of a failed command; fails on tracebacks or several errors."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr[-3000:]
    assert errors[0].startswith("symlight: error: ")
    return errors[0]


def folder_contents(folder) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fails(args: list[str], capsys) -> str:
    from symlight.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    return one_error_line(capsys.readouterr().err)
