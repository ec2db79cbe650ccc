"""Sweeps on a PostgreSQL storage: a worker killed mid-trial on a real server loses no trial,
and a storage that cannot be opened (no driver, no server, a bad URL) is one line with exit
status 2. The real-server test is marked ``postgres`` (and ``slow``, so the default run leaves it
out): ``python -m pytest -m postgres`` starts a throw-away cluster for it with the scenario of
``benchmarks/sweep_failover.py``, or skips saying what it needs."""

import importlib.util
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from symlight.app.main import main as symlight
from symlight.app.sweep.study import HOST, with_driver

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "sweep_failover.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("sweep_failover", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


bench = _benchmark()


@pytest.fixture(scope="module")
def postgres_url():
    missing = bench.unavailable()
    if missing:
        pytest.skip(f"{missing}; {bench.HOW}")
    with bench.cluster() as url:
        yield url


def sweep_error(capsys, argv: list[str]) -> str:
    """Run ``symlight sweep ARGV``: exit status 2 and one line on stderr; returns the line."""
    with pytest.raises(SystemExit) as exit_info:
        symlight(["sweep", *argv])
    assert exit_info.value.code == 2
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symlight: error: "), printed.err
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_storage_without_its_driver_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    config, out = bench.write_grid(tmp_path, seeds=1), tmp_path / "out"
    args = ["--config", str(config), "--out", str(out)]
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # whatever this machine has installed
    line = sweep_error(capsys, [*args, "--storage", "mysql://me:secret@db.lan/sweeps"])
    assert "mysql://me:***@db.lan/sweeps" in line and "secret" not in line
    assert "MySQLdb" in line and 'pip install -e ".[postgres]"' in line
    for module in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)
    line = sweep_error(capsys, [*args, "--storage", "postgresql://me:secret@db.lan:5433/sweeps"])
    assert line.startswith("symlight: error: storage postgresql://me:***@db.lan:5433/sweeps: ")
    assert "psycopg" in line and 'pip install -e ".[postgres]"' in line
    assert not out.exists(), "no sweep folder for a sweep that cannot start"


def test_an_unreachable_server_or_a_bad_url_is_one_line_without_the_password(tmp_path, capsys):
    config, out = bench.write_grid(tmp_path, seeds=1), tmp_path / "out"
    args = ["--config", str(config), "--out", str(out)]
    line = sweep_error(capsys, [*args, "--storage", "not a url"])
    assert "'not a url' is not a database URL" in line
    if not importlib.util.find_spec("psycopg") and not importlib.util.find_spec("psycopg2"):
        pytest.skip(f"no PostgreSQL driver for the unreachable server; {bench.HOW}")
    url = f"postgresql://me:secret@127.0.0.1:{closed_port()}/sweeps"
    line = sweep_error(capsys, [*args, "--storage", url])
    shown = url.replace("secret", "***")
    assert (
        line.startswith(f"symlight: error: storage {shown}: cannot open it: ") and "refused" in line
    )
    assert not out.exists()


def test_the_heartbeat_is_set_from_the_environment_in_whole_seconds(tmp_path, capsys, monkeypatch):
    config, out = bench.write_grid(tmp_path, seeds=1), tmp_path / "out"
    args = ["--config", str(config), "--out", str(out)]
    monkeypatch.setenv("SYMLIGHT_SWEEP_GRACE_S", "2.5")
    assert "SYMLIGHT_SWEEP_GRACE_S='2.5': a whole number of seconds" in sweep_error(capsys, args)
    monkeypatch.setenv("SYMLIGHT_SWEEP_GRACE_S", "4")
    monkeypatch.setenv("SYMLIGHT_SWEEP_HEARTBEAT_S", "4")
    line = sweep_error(capsys, args)
    assert "grace period (4 s) must be longer than its interval (4 s)" in line


def test_a_plain_postgresql_url_uses_psycopg_3_without_psycopg2(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip(f"psycopg is not installed; {bench.HOW}")
    assert (
        with_driver("postgresql://me:p%40ss@h:5432/db")
        == "postgresql+psycopg://me:p%40ss@h:5432/db"
    )
    assert with_driver("postgresql+psycopg2://h/db") == "postgresql+psycopg2://h/db"
    assert with_driver("sqlite:///study.db") == "sqlite:///study.db"
    monkeypatch.setitem(sys.modules, "psycopg", None)
    assert with_driver("postgresql://h/db") == "postgresql://h/db", "SQLAlchemy's own error then"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_no_trial(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMLIGHT_SWEEP_HEARTBEAT_S", "1")  # the workers' heartbeat: a dead
    monkeypatch.setenv("SYMLIGHT_SWEEP_GRACE_S", "5")  # worker's trial is re-run 5 s later
    config = bench.write_grid(tmp_path, seeds=2)
    outcome = bench.two_workers(config, postgres_url, "failover", tmp_path, kill=True, timeout=240)
    dead, alive = outcome.victim, 1 - outcome.victim
    logs = [out.with_suffix(".log").read_text()[-2000:] for out in outcome.outs]
    assert outcome.exit_codes[dead] == -9 and outcome.exit_codes[alive] == 0, logs
    assert outcome.workers[alive].startswith(f"{HOST}:")
    trials = {t.number: t for t in outcome.trials}
    killed = trials[outcome.killed.number]
    assert outcome.killed.user_attrs["worker"] == outcome.workers[dead]
    assert killed.state == TrialState.FAIL, "killed while running, failed by the heartbeat"
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert Counter(t.system_attrs["grid_id"] for t in complete) == Counter(range(4)), (
        "every grid point has exactly one COMPLETE trial"
    )
    assert not [t for t in trials.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    (retry,) = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert (
        retry.state == TrialState.COMPLETE and retry.user_attrs["worker"] == outcome.workers[alive]
    )
    assert retry.params == killed.params and retry.system_attrs["retry_history"] == [killed.number]
    assert {t.user_attrs.get("worker") for t in trials.values()} == set(outcome.workers), (
        "both workers ran trials of the one study"
    )
    assert (outcome.outs[alive] / "trials.csv").is_file(), "the survivor exported the study"
