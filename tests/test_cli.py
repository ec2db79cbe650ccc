from contextlib import nullcontext
from importlib.resources import files
from pathlib import Path

import pytest
import torch

from symlight.app.argv import pre_parse
from symlight.app.cli import resolve
from symlight.cli import main, resolve_config
from symlight.training import SymmetricModule

from conftest import TINY, run_cli, scalars

SHIPPED = sorted(
    str(p.relative_to(Path(str(files("symlight.configs")))))
    for p in Path(str(files("symlight.configs"))).glob("*.yaml")
)
NETWORKS = sorted(p.name for p in Path(str(files("symlight.configs"))).glob("models/*.yaml"))


@pytest.mark.timeout(300)
def test_fit_logs_checkpoints_and_resumes(tmp_path, monkeypatch):
    pairwise = [
        "--model.init_args.net",
        "models/pairwise.yaml",
        "--model.init_args.schedule=constant",
    ]
    first = run_cli(["fit", "--config", "argmax.yaml", *TINY, *pairwise], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    logs = tmp_path / "lightning_logs" / "argmax"
    run = logs / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    logged = scalars(run)
    for tag in ("train/loss", "val/loss", "val/acc", "val/acc@n=20", "equivariance/max_abs_error"):
        assert tag in logged, sorted(logged)
    assert all(0.0 <= v <= 1.0 for v in logged["val/acc@n=20"])
    trained_config = (run / "config.yaml").read_text()

    # Evaluating the last checkpoint rebuilds its network (not the config's DeepSets) and logs
    # to a new folder apart from the training runs, leaving the training run's record alone.
    monkeypatch.chdir(tmp_path)
    cli = main(["validate", "--config", "argmax.yaml", *TINY, "--ckpt_path", "last"])
    assert type(cli.model.net).__name__ == "PairwiseNet"
    assert (logs / "eval" / "version_0").is_dir()
    assert sorted(p.name for p in logs.iterdir()) == ["eval", "version_0"]
    assert (run / "config.yaml").read_text() == trained_config

    resumed = run_cli(
        ["fit", "--config", "argmax.yaml", *TINY, "--trainer.max_epochs=2", "--ckpt_path=last"],
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restoring states from the checkpoint" in resumed.stderr + resumed.stdout
    assert not (logs / "version_2").exists()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 10
    assert ckpt["ArgmaxDataModule"] == {"train_epoch": 2}

    model = SymmetricModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert type(model.net).__name__ == "PairwiseNet"
    assert model.hparams.rep_out == "1x1"  # the task's output representation, linked


def test_resuming_with_another_length_or_other_data_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", "argmax.yaml", *TINY])
    with pytest.raises(SystemExit, match="one-cycle schedule spans 5 steps but this run has 15"):
        main(
            ["fit", "--config", "argmax.yaml", *TINY, "--trainer.max_epochs=3", "--ckpt_path=last"]
        )
    with pytest.raises(
        SystemExit, match="trained with element_shape=\\(1,\\) but this run.s data gives"
    ):
        main(
            [
                "validate",
                "--config",
                "argmax.yaml",
                *TINY,
                "--data.init_args.channels=3",
                "--ckpt_path",
                "last",
            ]
        )
    with pytest.raises(SystemExit, match="no checkpoint under lightning_logs/max_regression") as e:
        main(["fit", "--config", "max_regression.yaml", "--ckpt_path", "last"])
    assert e.value.code == 2 and "fit --config max_regression.yaml" in str(e.value)


@pytest.mark.timeout(120)
def test_wrong_config_key_fails_with_a_clear_message(tmp_path, monkeypatch):
    result = run_cli(["fit", "--config", "argmax.yaml", "--data.init_args.nn=3"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("symlight: error: data (ArgmaxDataModule): unknown option 'nn'")
    assert not (tmp_path / "lightning_logs").exists()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="argmax.yaml"):
        main(["fit", "--config", "no_such.yaml"])


def test_bare_config_names_resolve_to_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(resolve_config("argmax.yaml")).is_file()
    forms = (["-c", "argmax.yaml"], ["--config", "argmax.yaml"], ["--config=argmax"])
    for form in forms:
        line = resolve(pre_parse(["fit", *form]))
        assert Path(line.configs[0]).is_file() and Path(line.configs[0]).name == "argmax.yaml", form
        assert line.args() == ["fit", f"--config={line.configs[0]}"]
    for net in (
        ["--model.init_args.net", "models/pairwise.yaml"],
        ["--model.init_args.net=models/pairwise.yaml"],
    ):
        line = resolve(pre_parse(["fit", "-c", "argmax", *net]))
        assert Path(line.rest[-1].rpartition("=")[2]).is_file(), net
    (tmp_path / "argmax.yaml").write_text("seed_everything: 1\n")
    assert resolve_config("argmax.yaml") == "argmax.yaml"  # a local file wins


def test_tasks_command_lists_the_argmax_task(capsys):
    main(["tasks"])
    lines = capsys.readouterr().out.splitlines()
    argmax = next(line for line in lines if line.startswith("ArgmaxDataModule"))
    assert "argmax.yaml, max_regression.yaml" in argmax  # the shipped configs that use it
    shipped = [line for line in lines[1:] if " symlight.tasks" in line]  # tests may add tasks
    assert len(shipped) >= 4
    assert len({line.index(" symlight.tasks") for line in shipped}) == 1  # aligned columns


@pytest.mark.parametrize("config", SHIPPED)
def test_every_shipped_config_runs_one_batch(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sizes = ["--data.init_args.val_sizes=[12]"] if "val_sizes" in _shipped(config) else []
    main(
        [
            "fit",
            "--config",
            config,
            "--trainer.fast_dev_run=1",
            "--trainer.enable_progress_bar=false",
            *SMALL_DATA.get(config, ["--data.init_args.val_sets=16", *sizes]),
        ]
    )


def _shipped(config: str) -> str:
    return Path(str(files("symlight.configs")), config).read_text()


# Data arguments that make a shipped config's validation small, where its data differ from the
# argmax family's (val_sets, val_sizes).
SMALL_DATA = {
    "bandit.yaml": [
        "--data.init_args.val_instances=16",
        "--data.init_args.horizon=[10]",
        "--data.init_args.train_horizon=[10]",
    ],
    "navigation.yaml": [
        "--data.init_args.val_instances=8",
        "--data.init_args.val_agents=[3]",
        "--data.init_args.num_envs=16",
    ],
}


@pytest.mark.parametrize("network", NETWORKS)
def test_every_shipped_network_config_trains_on_argmax(network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The MLP baseline is the one network the equivariance check must flag.
    flagged = (
        pytest.warns(UserWarning, match="not equivariant")
        if network == "mlp.yaml"
        else nullcontext()
    )
    with flagged:
        cli = main(
            [
                "fit",
                "--config",
                "argmax.yaml",
                "--model.init_args.net",
                f"models/{network}",
                "--trainer.fast_dev_run=1",
                "--trainer.enable_progress_bar=false",
                "--data.init_args.val_sets=16",
                "--data.init_args.val_sizes=[12]",
            ]
        )
    assert cli.trainer.global_step == 1
    assert cli.model.net.out_order == 1


def test_data_dimensions_are_linked_into_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "--config",
            "argmax.yaml",
            "--data.init_args.channels=5",
            "--data.init_args.target=max",
            "--trainer.fast_dev_run=1",
            "--trainer.enable_progress_bar=false",
            "--data.init_args.val_sizes=[]",
        ]
    )
    assert tuple(cli.model.hparams.element_shape) == (5,)
    assert cli.model.hparams.rep_out == "1x0"  # max of a set: one invariant channel
    assert cli.model.net.out_order == 0


def test_last_checkpoint_is_the_latest_state_when_the_metric_stops_improving(tmp_path, monkeypatch):
    # mode "max" on a falling val/loss: only the first epoch is ever the best
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", "argmax.yaml", *TINY, "--trainer.max_epochs=3"]
    main([*args, "--checkpoint.mode=max"])
    folder = tmp_path / "lightning_logs" / "argmax" / "version_0" / "checkpoints"
    last = torch.load(folder / "last.ckpt", weights_only=False)
    best = torch.load(folder / "best.ckpt", weights_only=False)
    assert best["global_step"] == 5 and last["global_step"] == 15
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]  # renamed whole
    assert last["ArgmaxDataModule"]["train_epoch"] == 3  # resuming draws the next epoch's batches
