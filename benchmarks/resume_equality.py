"""A fit killed with SIGKILL in the middle of an epoch and resumed with ``--ckpt_path last`` against
the same fit run without interruption, for the argmax and the bandit tasks.

Each fit is a fresh ``python -m symlight fit`` process in a scratch folder, with ``last.ckpt``
written every few steps (``--checkpoint.last_every_n_train_steps``). The interrupted fit is
frozen (SIGSTOP) as soon as a new ``last.ckpt`` appears; if that checkpoint is in the middle of
the second epoch or later, the process group is killed (SIGKILL), else it is let go on to the
next one. The fit is then resumed
in the same folder with ``--ckpt_path last``. Printed per task: the steps of the fit, the step of
the checkpoint it resumed from (its epoch and batch), the largest difference between the final
weights of the two runs and between their final metrics.

    python benchmarks/resume_equality.py [--tasks argmax bandit]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _runs import machine, scalars

EVERY = 7
"""Steps between two ``last.ckpt`` (a prime, so most of them fall inside an epoch)."""

TASKS: dict[str, tuple[int, list[str]]] = {
    # name: (training steps per epoch, the fit's options)
    "argmax": (
        30,
        [
            "--config=argmax",
            "--trainer.max_epochs=3",
            "--data.init_args.batches_per_epoch=30",
            "--data.init_args.val_sets=64",
            "--data.init_args.val_sizes=[20]",
        ],
    ),
    "bandit": (
        12,
        [
            "--config=bandit",
            "--trainer.max_epochs=3",
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
COMMON = [
    f"--checkpoint.last_every_n_train_steps={EVERY}",
    "--trainer.enable_progress_bar=false",
    "--trainer.log_every_n_steps=1",
]


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    return env


def symlight(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "symlight", *args]
    result = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


def final_metrics(folder: Path, name: str) -> dict[str, float]:
    """The last value TensorBoard holds of each validation and equivariance metric of a run."""
    logged = scalars(folder / "lightning_logs" / name / "version_0")
    return {tag: values[-1] for tag, values in logged.items() if tag.startswith(("val/", "equi"))}


def kill_mid_epoch(args: list[str], cwd: Path, per_epoch: int, timeout: float = 300) -> int:
    """Start ``fit ARGS`` in ``cwd`` and SIGKILL it once its ``last.ckpt`` is in the middle of an
    epoch after the first; return the step of that checkpoint.
    """
    last = (
        cwd / "lightning_logs" / args[0].split("=")[1] / "version_0" / "checkpoints" / "last.ckpt"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "symlight", "fit", *args],
        cwd=cwd,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the fit ended before a mid-epoch checkpoint")
            stamp = last.stat().st_mtime_ns if last.is_file() else None
            if stamp is not None and stamp != seen:
                os.killpg(process.pid, signal.SIGSTOP)
                step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
                if step % per_epoch and step > per_epoch:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return step
                seen = last.stat().st_mtime_ns
                os.killpg(process.pid, signal.SIGCONT)
            time.sleep(0.01)
        raise RuntimeError(f"no mid-epoch checkpoint after {timeout} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def weights(folder: Path, name: str) -> tuple[int, dict[str, torch.Tensor]]:
    ckpt = folder / "lightning_logs" / name / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    return state["global_step"], state["state_dict"]


def compare(name: str) -> str:
    per_epoch, args = TASKS[name]
    args = [*args, *COMMON]
    with tempfile.TemporaryDirectory(prefix="symlight-resume-") as scratch:
        whole, broken = Path(scratch, "whole"), Path(scratch, "killed")
        whole.mkdir(), broken.mkdir()
        start = time.perf_counter()
        symlight(["fit", *args], whole)
        killed_at = kill_mid_epoch(args, broken, per_epoch)
        symlight(["fit", *args, "--ckpt_path=last"], broken)
        seconds = time.perf_counter() - start
        steps, expected = weights(whole, name)
        resumed_steps, got = weights(broken, name)
        reference, resumed = final_metrics(whole, name), final_metrics(broken, name)
    weight_diff = max((expected[k].double() - got[k].double()).abs().max().item() for k in expected)
    metric_diff = max(abs(reference[k] - resumed[k]) for k in reference)
    same = sorted(reference) == sorted(resumed) and steps == resumed_steps
    return (
        f"{name:7s} steps {steps} (resumed run {resumed_steps}), killed after the checkpoint of "
        f"step {killed_at} (epoch {killed_at // per_epoch}, batch {killed_at % per_epoch} of "
        f"{per_epoch}); max |weight difference| {weight_diff:.3g} over "
        f"{sum(v.numel() for v in expected.values())} weights; max |final metric difference| "
        f"{metric_diff:.3g} over {len(reference)} metrics{'' if same else ' (MISMATCHED)'}; "
        f"{seconds:.0f} s for the three fits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    options = parser.parse_args()
    print(f"resume after SIGKILL mid-epoch, last.ckpt every {EVERY} steps ({machine()})")
    for name in options.tasks:
        print(compare(name), flush=True)


if __name__ == "__main__":
    main()
