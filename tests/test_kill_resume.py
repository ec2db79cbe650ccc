"""A fit killed with SIGKILL in the middle of an epoch, resumed with ``--ckpt_path last``, ends
exactly where the same fit run without interruption ends: same steps, same weights, same final
metrics. The killed fit is a process of its own; the uninterrupted and the resumed fits run in
this one, all three on one torch thread (the same sums, and no threads waiting on 2 busy cores)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from symlight.app.cli import RunLifecycle
from symlight.cli import main
from symlight.tasks import ArgmaxDataModule

from conftest import fails

EVERY = 7
"""Steps between two ``last.ckpt``: prime, so that most of them fall inside an epoch."""

COMMON = [
    f"--checkpoint.last_every_n_train_steps={EVERY}",
    "--trainer.max_epochs=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]

TASKS = {
    # name: (training steps per epoch, options)
    "argmax": (
        20,
        [
            "--config=argmax",
            "--data.init_args.batches_per_epoch=20",
            "--data.init_args.val_sets=64",
            "--data.init_args.val_sizes=[20]",
        ],
    ),
    "bandit": (
        12,
        [
            "--config=bandit",
            "--data.init_args.k=5",
            "--data.init_args.horizon=10",
            "--data.init_args.train_horizon=[5,10]",
            "--data.init_args.num_envs=64",
            "--data.init_args.min_envs=32",
            "--data.init_args.env_steps=640",
            "--data.init_args.steps_per_epoch=12",
            "--data.init_args.val_instances=32",
        ],
    ),
}


def killed_mid_epoch(args: list[str], cwd: Path, per_epoch: int) -> dict:
    """Run ``fit ARGS`` in ``cwd`` as its own process group, freeze it (SIGSTOP) at each new
    ``last.ckpt`` and kill it (SIGKILL) at the first one written in the middle of an epoch; return
    that checkpoint.
    """
    here = str(Path(__file__).parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("LOCAL_RANK", None)
    log = cwd / "fit.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "symlight", "fit", *args],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    name = args[0].partition("=")[2]
    last = cwd / "lightning_logs" / name / "version_0" / "checkpoints" / "last.ckpt"
    seen = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "the fit ended first:\n" + log.read_text()[-3000:]
            stamp = last.stat().st_mtime_ns if last.is_file() else None
            if stamp is not None and stamp != seen:
                os.killpg(process.pid, signal.SIGSTOP)
                checkpoint = torch.load(last, map_location="cpu", weights_only=False)
                if checkpoint["global_step"] % per_epoch:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return checkpoint
                seen = last.stat().st_mtime_ns
                os.killpg(process.pid, signal.SIGCONT)
            time.sleep(0.005)
        pytest.fail("no mid-epoch last.ckpt after 120 s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def final_state(folder: Path, name: str) -> dict:
    ckpt = folder / "lightning_logs" / name / "version_0" / "checkpoints" / "last.ckpt"
    return torch.load(ckpt, map_location="cpu", weights_only=False)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_fit_killed_mid_epoch_resumes_to_the_same_end(name, tmp_path, monkeypatch, one_thread):
    per_epoch, options = TASKS[name]
    args = [*options, *COMMON]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()

    at_kill = killed_mid_epoch(args, killed, per_epoch)
    step = at_kill["global_step"]
    assert 0 < step % per_epoch and step < 2 * per_epoch

    monkeypatch.chdir(whole)
    reference = main(["fit", *args]).trainer
    monkeypatch.chdir(killed)
    resumed = main(["fit", *args, "--ckpt_path", "last"]).trainer

    assert [c.start_step for c in resumed.callbacks if isinstance(c, RunLifecycle)] == [step]
    assert sorted(p.name for p in (killed / "lightning_logs" / name).iterdir()) == ["version_0"]
    assert reference.global_step == resumed.global_step == 2 * per_epoch
    expected, got = final_state(whole, name), final_state(killed, name)
    assert got["global_step"] == expected["global_step"] == 2 * per_epoch
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    for key, value in expected["state_dict"].items():
        torch.testing.assert_close(got["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    assert any(not torch.equal(at_kill["state_dict"][k], v) for k, v in got["state_dict"].items())
    final = {k: v for k, v in reference.callback_metrics.items() if k.startswith("val/")}
    assert final and final.keys() == {k for k in resumed.callback_metrics if k.startswith("val/")}
    for key, value in final.items():
        torch.testing.assert_close(resumed.callback_metrics[key], value, rtol=0, atol=1e-6)


def test_the_training_stream_resumes_mid_epoch_from_the_tasks_state():
    def epochs(task, count):
        return [batch["x"] for _ in range(count) for batch in task.train_dataloader()]

    whole = epochs(ArgmaxDataModule(batches_per_epoch=5), 2)
    stopped = ArgmaxDataModule(batches_per_epoch=5)
    stream = iter(stopped.train_dataloader())
    drawn = [next(stream)["x"] for _ in range(3)]
    state = stopped.state_dict()
    assert state == {"train_epoch": 0, "train_batch": 3}
    resumed = ArgmaxDataModule(batches_per_epoch=5)
    resumed.load_state_dict(state)
    again = drawn + epochs(resumed, 2)
    assert len(again) == len(whole) and all(map(torch.equal, again, whole))
    # a pass the trainer ends early (limit_train_batches=3) is a whole epoch
    assert stopped.train_batches.position(per_epoch=3) == {"train_epoch": 1}
    assert stopped.train_batches.position() == state


def test_a_step_interval_below_one_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = fails(["fit", "--config=argmax", "--checkpoint.last_every_n_train_steps=0"], capsys)
    assert "last_every_n_train_steps must be a number of steps >= 1" in line
    assert not (tmp_path / "lightning_logs").exists()
