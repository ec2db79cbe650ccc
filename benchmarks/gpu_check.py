"""EquivarianceCheck on a GPU: fit argmax for a few steps and print the logged errors.

    python benchmarks/gpu_check.py

Runs, when CUDA is available: every equivariant preset through ``assert_equivariant`` on the GPU
in float64; then ``configs/argmax.yaml`` for a few training steps with validation every 10 steps,
in float32 and in bf16-mixed precision, printing ``equivariance/max_abs_error`` and
``equivariance/max_rel_error`` as logged and the tolerance the dtype allows. Exits 0 with a
message when CUDA is absent; exits 1 if a check fails. ``--cpu`` runs the same steps on the CPU
(a dry run of the script itself).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

import torch

import symlight.models
from symlight.callbacks import EquivarianceCheck
from symlight.check import TOLERANCES, assert_equivariant
from symlight.cli import main
from symlight.symmetry import SetSymmetry


def check_presets(device: torch.device) -> None:
    presets = getattr(symlight.models, "PRESETS", {"DeepSets": symlight.models.DeepSets})
    gen = torch.Generator().manual_seed(0)
    mask = torch.arange(50)[None, :] < torch.randint(2, 51, (8, 1), generator=gen)
    x = torch.randn(8, 50, 3, generator=gen, dtype=torch.float64) * mask[..., None]
    batch = {"x": x.to(device), "mask": mask.to(device)}
    for name, cls in sorted(presets.items()):
        for order in (0, 1, 2):
            try:
                net = cls(3, 2, order)
            except ValueError:
                continue
            net = net.to(device, torch.float64)
            result = assert_equivariant(net, batch, SetSymmetry({"x": 1}, order))
            print(f"  {name:16s} order {order}: max abs error {result.max_abs_error:.2e} (float64)")


def fit(precision: str, accelerator: str) -> dict[str, float]:
    args = [
        "fit",
        "--config",
        "argmax.yaml",
        f"--trainer.accelerator={accelerator}",
        "--trainer.devices=1",
        "--trainer.max_steps=30",
        "--trainer.val_check_interval=10",
        f"--trainer.precision={precision}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--equivariance.on_violation=raise",
    ]
    start = time.perf_counter()
    cli = main(args)
    seconds = time.perf_counter() - start
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, EquivarianceCheck))
    logged = {
        k: float(v)
        for k, v in cli.trainer.callback_metrics.items()
        if k.startswith("equivariance/")
    }
    print(f"  precision {precision}: {logged} in {seconds:.1f} s (callback.last {callback.last})")
    return logged


def run(cpu: bool = False) -> int:
    if cpu:
        device, accelerator = torch.device("cpu"), "cpu"
    elif torch.cuda.is_available():
        device, accelerator = torch.device("cuda"), "gpu"
    else:
        print("CUDA is not available: nothing to check on a GPU (run this on a machine with one).")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"device: {name}, torch {torch.__version__}")
    warnings.filterwarnings("ignore")
    os.chdir(tempfile.mkdtemp(prefix="symlight-gpu-check-"))
    print("presets, assert_equivariant on the GPU:")
    check_presets(device)
    print("argmax fit with EquivarianceCheck (validation every 10 steps):")
    failed = False
    for precision, dtype in (("32-true", torch.float32), ("bf16-mixed", torch.bfloat16)):
        logged = fit(precision, accelerator)
        tolerance = TOLERANCES[dtype]
        ok = bool(logged) and logged["equivariance/max_rel_error"] <= tolerance
        failed |= not ok
        print(f"    {'ok' if ok else 'FAILED'}: max_rel_error within {tolerance:g} ({dtype})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(cpu="--cpu" in sys.argv[1:]))
