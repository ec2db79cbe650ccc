"""Helpers shared by the benchmark scripts: run the CLI in a scratch folder, read its scalars."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, {gpu}"


def fit(
    args: list[str], subcommand: str = "fit", workdir: Path | None = None
) -> tuple[float, Path]:
    """Run ``python -m symlight <subcommand> ARGS``; return (seconds, working folder)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="symlight-bench-"))
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "symlight",
            subcommand,
            *args,
            "--trainer.enable_progress_bar=false",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"symlight {subcommand} failed:\n{result.stderr[-4000:]}")
    return seconds, workdir


def scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar series TensorBoard holds for one run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [s.value for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
