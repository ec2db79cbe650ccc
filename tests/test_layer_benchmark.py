"""The layer benchmark's claims, re-measured (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "layers.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("layer_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_pairs_to_pairs_is_ten_times_faster_than_dense() -> None:
    bench = _benchmark()
    ours = bench.run_case("linear22", 32, 8, 8, repeats=5, threads=1)
    dense = bench.run_case("dense22", 32, 8, 8, repeats=5, threads=1)
    assert dense["seconds"] / ours["seconds"] >= 10


@pytest.mark.slow
def test_chunked_pairs_at_n_1000_fit_in_4_gb() -> None:
    bench = _benchmark()
    row = bench.run_case("compare-chunk-32", 1000, 8, 32, repeats=1, threads=1)
    assert row["peak_total_mb"] < 4096
