"""A sweep worker killed mid-trial on a real PostgreSQL server: trials, retries and time lost.

    python benchmarks/sweep_failover.py                        # heartbeat 10 s, grace 30 s
    python benchmarks/sweep_failover.py --heartbeat 1 --grace 5 --seeds 3

Starts a throw-away PostgreSQL 15 cluster (``initdb`` and ``pg_ctl`` from
/usr/lib/postgresql/15/bin, in a temporary folder, on a free local port; as the ``postgres`` user
when run as root) and runs one small grid twice, each time as two
``python -m symlight sweep --storage postgresql://...`` processes sharing one study: once
undisturbed, then with one worker killed (SIGKILL to its process group) in the middle of a trial,
once both have started trials. The survivor finishes the grid: Optuna's heartbeat fails the dead
worker's trial once it is stale, and its retry callback queues it again. Prints, for each run, the
trials by state, the retries, the mean seconds of a complete trial, and the wall-clock time from
the start of the workers to the end of the last one; the time lost is the difference (the grace
period, the survivor's polling, and the trials the dead worker would have run in parallel).
Needs ``pip install -e ".[postgres]"``.

``tests/test_sweep_postgres.py`` runs the same scenario (:func:`cluster`, :func:`two_workers`)
and checks that no trial is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from symlight.app.sweep.study import GRACE_S, HEARTBEAT_S, HOST, open_storage

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOW = (
    'to run them: pip install -e ".[postgres]", PostgreSQL 15 server binaries in '
    f"{PG_BIN} (apt-get install postgresql-15), then python -m pytest -m postgres"
)

GRID = """\
# two networks x {seeds} seeds of a small argmax fit; each trial a few seconds on one CPU thread
base: argmax.yaml
args:
  trainer.max_epochs: 1
  trainer.num_sanity_val_steps: 0
  trainer.log_every_n_steps: 10
  checkpoint.save_top_k: 0
  checkpoint.save_last: false
  data.init_args.batches_per_epoch: {batches}
  data.init_args.batch_size: 16
  data.init_args.val_sets: 8
  data.init_args.val_sizes: [20]
  model.init_args.net.init_args.hidden: 8
objective: val/acc
metrics: [val/acc]
in_process: true
threads: 1
grid:
  net:
    max: {{model.init_args.net.init_args.pooling: max}}
    mean: {{model.init_args.net.init_args.pooling: mean}}
  seed: {{{seed_options}}}
"""


def write_grid(folder: Path, seeds: int, batches: int = 600) -> Path:
    """A sweep config of ``2 * seeds`` grid points, written to ``folder/failover.yaml``."""
    options = ", ".join(f"{s}: {{seed_everything: {s}}}" for s in range(seeds))
    path = folder / "failover.yaml"
    path.write_text(GRID.format(seeds=seeds, batches=batches, seed_options=options))
    return path


# -- a throw-away PostgreSQL cluster --------------------------------------------------------------
def unavailable() -> str | None:
    """Why no cluster can be started here (None if one can): no server binaries or no driver."""
    if not (PG_BIN / "initdb").is_file():
        return f"no PostgreSQL 15 server binaries ({PG_BIN / 'initdb'} is missing)"
    if not importlib.util.find_spec("psycopg") and not importlib.util.find_spec("psycopg2"):
        return "no PostgreSQL driver (psycopg) is installed"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser, which initdb needs to run as the postgres user"
    return None


def _as_owner(cmd: list[str]) -> list[str]:
    """``initdb`` refuses to run as root: as root, run the server's commands as ``postgres``."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed (exit status {done.returncode}):\n{said}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cluster(database: str = "symlight") -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary folder, on a free port of 127.0.0.1, with one
    empty database; yield its URL (``postgresql://postgres@127.0.0.1:PORT/DATABASE``), then stop
    the server and remove the folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="symlight-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    started = False
    try:
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run(_as_owner([*initdb, "-E", "UTF8", "--no-sync"]), folder)
        server = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
        _run(_as_owner([*start, "-w", "-o", server, "start"]), folder)
        started = True
        createdb = [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        _run([*createdb, "-U", "postgres", database], folder)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            stop = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            subprocess.run(_as_owner(stop), cwd=folder, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# -- two workers on one study ---------------------------------------------------------------------
@dataclass
class Outcome:
    """What two workers left in the study, and how long they took."""

    seconds: float
    """From the start of the workers to the end of the last one."""
    trials: list[FrozenTrial]
    workers: list[str]
    """Each worker's ``host:pid``, as trials record it in their ``worker`` user attribute."""
    outs: list[Path]
    """Each worker's ``--out`` folder; its console output is in ``<out>.log``."""
    exit_codes: list[int]
    killed: FrozenTrial | None = None
    """The trial the killed worker was running when it was killed, as it was then."""
    victim: int | None = None
    """Which worker was killed: 0 or 1."""


KILL_AFTER_S = 1.0
"""How long a trial runs before its worker is killed. Optuna writes a trial's first heartbeat as
it starts (a trial without one is never found stale); the grid's trials last several seconds."""


def _trials(storage: optuna.storages.BaseStorage, study: str) -> list[FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    except KeyError:  # the workers have not created the study yet
        return []


def _kill_mid_trial(
    procs: list[subprocess.Popen], storage, study: str, deadline: float
) -> tuple[int, FrozenTrial]:
    """Once both workers have started trials, SIGKILL the process group of the first one seen
    running a trial for :data:`KILL_AFTER_S`; return it and that trial.
    """
    owners = [f"{HOST}:{p.pid}" for p in procs]
    seen: dict[int, float] = {}
    while time.perf_counter() < deadline:
        trials = _trials(storage, study)
        both = {t.user_attrs.get("worker") for t in trials} >= set(owners)
        for t in trials:
            if t.state == TrialState.RUNNING and t.user_attrs.get("worker") in owners:
                since = seen.setdefault(t.number, time.perf_counter())
                if both and time.perf_counter() - since >= KILL_AFTER_S:
                    victim = owners.index(t.user_attrs["worker"])
                    os.killpg(procs[victim].pid, signal.SIGKILL)
                    return victim, t
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker ended before one could be killed in the middle of a trial")
        time.sleep(0.1)
    raise RuntimeError("no worker ran a trial long enough to be killed in it")


def two_workers(
    config: Path, url: str, study: str, folder: Path, kill: bool, timeout: float = 600
) -> Outcome:
    """Run two ``python -m symlight sweep --storage URL`` processes on one study, each with its
    own ``--out`` (``folder/STUDY_a``, ``folder/STUDY_b``) and console log (the same, ``.log``);
    with ``kill``, SIGKILL one of them in the middle of a trial once both have started trials.
    The heartbeat comes from the environment (``SYMLIGHT_SWEEP_HEARTBEAT_S``, ...).
    """
    with warnings.catch_warnings():  # Optuna's heartbeat is experimental: what the sweep uses
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        storage = open_storage(url)  # the tables exist before the workers start
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "symlight", "sweep", "--config", str(config), "--storage", url]
    cmd += ["--study", study, "--no-progress"]
    outs = [folder / f"{study}_{name}" for name in ("a", "b")]
    procs: list[subprocess.Popen] = []
    start = time.perf_counter()
    deadline = start + timeout
    victim, killed = None, None
    try:
        for out in outs:
            with open(out.with_suffix(".log"), "w") as log:
                procs.append(
                    subprocess.Popen(
                        [*cmd, "--out", str(out)],
                        cwd=folder,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        if kill:
            victim, killed = _kill_mid_trial(procs, storage, study, deadline)
        for proc in procs:
            proc.wait(timeout=max(deadline - time.perf_counter(), 1))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        logs = "\n".join(
            f"--- {out.with_suffix('.log').name}:\n{out.with_suffix('.log').read_text()[-1500:]}"
            for out in outs
        )
        raise RuntimeError(f"{error}\n{logs}") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return Outcome(
        seconds=time.perf_counter() - start,
        trials=_trials(storage, study),
        workers=[f"{HOST}:{p.pid}" for p in procs],
        outs=outs,
        exit_codes=[p.returncode for p in procs],
        killed=killed,
        victim=victim,
    )


def summary(outcome: Outcome) -> str:
    states = Counter(t.state.name for t in outcome.trials)
    retries = sum("failed_trial" in t.system_attrs for t in outcome.trials)
    said = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
    fits = [t.user_attrs["seconds"] for t in outcome.trials if t.state == TrialState.COMPLETE]
    mean = sum(fits) / max(len(fits), 1)
    return (
        f"{len(outcome.trials)} trials ({said}), {retries} retries, {mean:.1f} s per trial, "
        f"{outcome.seconds:.1f} s in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="grid: 2 networks x SEEDS seeds")
    parser.add_argument("--batches", type=int, default=600, help="training steps per trial")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, help="seconds")
    parser.add_argument("--grace", type=int, default=GRACE_S, help="seconds")
    args = parser.parse_args()
    missing = unavailable()
    if missing:
        sys.exit(f"sweep_failover: {missing}; {HOW.removeprefix('to run them: ')}")
    os.environ["SYMLIGHT_SWEEP_HEARTBEAT_S"] = str(args.heartbeat)
    os.environ["SYMLIGHT_SWEEP_GRACE_S"] = str(args.grace)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="symlight-failover-") as tmp, cluster() as url:
        folder = Path(tmp)
        config = write_grid(folder, args.seeds, args.batches)
        print(
            f"sweep failover: {2 * args.seeds} grid points ({args.batches} steps each), two "
            f"workers on PostgreSQL 15, heartbeat {args.heartbeat} s, grace {args.grace} s; "
            f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
        )
        plain = two_workers(config, url, "plain", folder, kill=False)
        print(f"  no kill: {summary(plain)}")
        killed = two_workers(config, url, "killed", folder, kill=True)
        print(f"  one worker killed in trial {killed.killed.number}: {summary(killed)}")
        print(f"  time lost: {killed.seconds - plain.seconds:.1f} s")
        complete = Counter(
            t.system_attrs.get("grid_id") for t in killed.trials if t.state == TrialState.COMPLETE
        )
        if sorted(complete) != list(range(2 * args.seeds)) or set(complete.values()) != {1}:
            sys.exit(f"sweep_failover: not one COMPLETE trial per grid point: {dict(complete)}")
        if killed.trials[killed.killed.number].state != TrialState.FAIL:
            sys.exit("sweep_failover: the killed trial ended before the kill; run it again")


if __name__ == "__main__":
    main()
