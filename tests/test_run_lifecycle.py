"""A run's life after the first one: Ctrl-C and resuming, checkpoints used with their own task
and network, predictions that can be traced to their sets, shipped presets inside a user's own
config, and evaluations logged apart from the training runs."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from symlight.cli import main

from conftest import TINY, fails, folder_contents, one_error_line, run_cli

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--config", "argmax", *TINY]

# A user's own config, kept outside the repository: argmax on small data, a shipped network.
QUICK = """\
trainer:
  max_epochs: 2
  log_every_n_steps: 1
  enable_progress_bar: false
model:
  class_path: SymmetricModule
  init_args:
    net: models/pairwise.yaml
    schedule: onecycle
data:
  class_path: ArgmaxDataModule
  init_args:
    batches_per_epoch: 3
    batch_size: 32
    val_sets: 16
    val_sizes: []
"""


def cli_env() -> dict[str, str]:
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    env.pop("LOCAL_RANK", None)
    return env


@pytest.mark.timeout(240)
def test_ctrl_c_ends_with_the_command_that_resumes_the_run(tmp_path):
    (tmp_path / "quick.yaml").write_text(QUICK)
    args = ["fit", "--config", "quick.yaml", "--trainer.max_epochs", "30"]
    process = subprocess.Popen(
        [sys.executable, "-m", "symlight", *args],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a test runner started in the background has SIGINT ignored, and a
        # child would inherit that, so Python would never raise KeyboardInterrupt in it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run = tmp_path / "lightning_logs" / "quick" / "version_0"
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "last.ckpt").is_file() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack
            pytest.fail("no exit after Ctrl-C:\n" + process.communicate()[1][-6000:])
    finally:
        process.kill()
    assert process.returncode not in (0, None), "the run ended before it was interrupted"
    assert "Traceback" not in err, err[-3000:]
    lines = err.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if "run folder lightning_logs/quick/" in line)
    assert "run folder lightning_logs/quick/version_0" in lines[at], err[-2000:]
    command = lines[at + 1]
    assert command == (
        "python -m symlight fit --config=quick.yaml --trainer.max_epochs 30 "
        "--ckpt_path=lightning_logs/quick/version_0/checkpoints/last.ckpt"
    )
    interrupted_at = int(re.search(r"interrupted at step (\d+)", lines[at]).group(1))
    assert interrupted_at < 90

    resumed = subprocess.run(
        [sys.executable, *shlex.split(command)[1:]],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restoring states from the checkpoint" in resumed.stdout + resumed.stderr
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 90 and last["epoch"] == 29


def test_a_one_cycle_run_resumes_with_its_own_length(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick.yaml").write_text(QUICK)
    main(["fit", "--config", "quick.yaml", "--trainer.max_epochs", "3"])
    run = tmp_path / "lightning_logs" / "quick" / "version_0"
    capsys.readouterr()
    # no length on the command line: the checkpoint's (3 epochs), not the config's (2)
    cli = main(["fit", "--config", "quick.yaml", "--ckpt_path", "last"])
    captured = capsys.readouterr()
    assert "resuming with the run's own length: --trainer.max_epochs 3" in captured.err
    assert "nothing to train: the run had already reached max_epochs=3" in captured.out
    assert cli.trainer.max_epochs == 3
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]


def test_resuming_with_nothing_to_resume_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = fails(["fit", *SMALL, "--ckpt_path", "last"], capsys)
    assert "no checkpoint under lightning_logs/argmax" in line
    assert "fit --config argmax" in line
    assert "no such file" in fails(["fit", *SMALL, "--ckpt_path", "gone.ckpt"], capsys)
    assert not (tmp_path / "lightning_logs").exists()


@pytest.fixture(scope="module")
def argmax_checkpoint(tmp_path_factory) -> Path:
    """The last checkpoint of a short argmax run (DeepSets)."""
    folder = tmp_path_factory.mktemp("argmax_run")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        main(["fit", *SMALL])
    finally:
        os.chdir(cwd)
    return folder / "lightning_logs" / "argmax" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_a_checkpoint_of_another_task_is_one_line(
    command, argmax_checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    line = fails([command, "--config", "ring", f"--ckpt_path={argmax_checkpoint}"], capsys)
    assert "checkpoint of the task ArgmaxDataModule (network DeepSets)" in line
    assert "this command's task is RingDataModule" in line
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_a_network_other_than_the_checkpoints_is_one_line(
    command, argmax_checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = [command, *SMALL, f"--ckpt_path={argmax_checkpoint}"]
    line = fails([*args, "--model.init_args.net", "models/pairwise.yaml"], capsys)
    assert "holds a DeepSets network, but the command asks for PairwiseNet" in line
    line = fails([*args, "--model.init_args.net.init_args.hidden=7"], capsys)
    assert "DeepSets network with hidden=32, but the command asks for hidden=7" in line
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.timeout(120)
def test_a_checkpoint_of_another_task_exits_2_without_a_run_folder(argmax_checkpoint, tmp_path):
    result = run_cli(["test", "--config", "ring", f"--ckpt_path={argmax_checkpoint}"], tmp_path)
    assert result.returncode == 2
    assert "RingDataModule" in one_error_line(result.stderr)
    assert not (tmp_path / "lightning_logs").exists()


def test_a_failed_resume_leaves_the_run_folder_as_it_was(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", *SMALL])
    run = tmp_path / "lightning_logs" / "argmax" / "version_0"
    before = folder_contents(run)
    line = fails(["fit", *SMALL, "--trainer.max_epochs=2", "--ckpt_path", "last"], capsys)
    assert "one-cycle schedule spans 5 steps but this run has 10" in line
    assert folder_contents(run) == before


def test_shipped_presets_resolve_inside_a_users_config(tmp_path, monkeypatch):
    assert not tmp_path.resolve().is_relative_to(ROOT)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quick.yaml").write_text(QUICK)
    cli = main(["fit", "--config", "configs/quick.yaml", "--trainer.fast_dev_run=1"])
    assert type(cli.model.net).__name__ == "PairwiseNet"
    assert cli.trainer.global_step == 1
    # a file of that name beside the config is the user's own, and wins
    (tmp_path / "configs" / "models").mkdir()
    (tmp_path / "configs" / "models" / "pairwise.yaml").write_text(
        "class_path: symlight.models.DeepSets\ninit_args:\n  hidden: 8\n"
    )
    cli = main(["fit", "--config", "configs/quick.yaml", "--trainer.fast_dev_run=1"])
    assert type(cli.model.net).__name__ == "DeepSets"


def test_the_readme_example_reads_predictions(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    example = next(block for block in blocks if "predictions.pt" in block)
    assert len(example.strip().splitlines()) <= 5
    monkeypatch.chdir(tmp_path)
    main(["fit", *SMALL])
    main(["predict", *SMALL, "--ckpt_path", "last"])
    capsys.readouterr()
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 64 and printed[0].startswith("0 ")


@pytest.mark.timeout(60)
def test_a_shutdown_that_hangs_after_ctrl_c_is_ended():
    code = "from symlight.app.cli import exit_if_stuck; import time; exit_if_stuck(0.5); time.sleep(30)"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50
    )
    assert result.returncode == 1 and time.monotonic() - start < 25
    assert "shutdown after Ctrl-C took over 0 s; ended" in result.stderr
