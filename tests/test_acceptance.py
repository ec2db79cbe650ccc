"""The main job's promises, re-measured end to end (slow: run with ``pytest -m slow``)."""

import time

import pytest

from conftest import run_cli, scalars


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_main_job_solves_argmax_at_every_size_within_two_minutes(tmp_path):
    start = time.perf_counter()
    result = run_cli(["fit", "--config", "argmax.yaml"], cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    logged = scalars(tmp_path / "lightning_logs" / "argmax" / "version_0")
    assert logged["val/acc"][-1] >= 0.999
    assert logged["val/acc@n=100"][-1] >= 0.995
    assert logged["val/acc@n=1000"][-1] >= 0.995
    assert max(logged["equivariance/max_rel_error"]) <= 1e-4
    assert seconds <= 120


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_max_regression_beats_the_published_deepsets_error(tmp_path):
    fit = run_cli(["fit", "--config", "max_regression.yaml"], cwd=tmp_path, timeout=1100)
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpt = (
        tmp_path / "lightning_logs" / "max_regression" / "version_0" / "checkpoints" / "last.ckpt"
    )
    test = run_cli(["test", "--config", "max_regression.yaml", f"--ckpt_path={ckpt}"], cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    mae = scalars(tmp_path / "lightning_logs" / "max_regression" / "eval" / "version_0")[
        "test/mae"
    ][-1]
    assert mae <= 0.003  # published DeepSets-max: 0.1355
