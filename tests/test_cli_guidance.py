"""The command line for a new user: one-line errors, no leftover run folders, a final metrics
table, predictions on disk, help that lists every command, broken plug-ins contained."""

import logging
import warnings
from importlib.metadata import EntryPoint

import pytest
import torch

import symlight.app.plugins
from symlight.app.cli import CHATTY_LOGGERS
from symlight.callbacks import ProgressBar
from symlight.cli import main, metrics_table

from conftest import TINY, fails, folder_contents, one_error_line, run_cli, scalars

SMALL = ["--config", "argmax", *TINY]  # "argmax" without .yaml: resolved like argmax.yaml


@pytest.mark.timeout(240)
def test_bad_data_value_is_one_line_without_traceback_or_run_folder(tmp_path):
    result = run_cli(["fit", *SMALL, "--data.init_args.n_min", "-3"], cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "n_min" in line and "-3" in line and "Union" not in line
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.timeout(300)
def test_a_run_from_fit_to_predict(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "lightning_logs" / "argmax"

    # fit: the run folder and a table of the final metrics, one column per validation set
    main(["fit", *SMALL])
    out = capsys.readouterr().out
    assert "run folder: lightning_logs/argmax/version_0" in out
    table = out[out.index("\nmetric ") + 1 :]  # the metrics table, not a model summary row
    assert "@n=20" in table.splitlines()[0]
    assert any(line.startswith("val/acc ") for line in table.splitlines())
    assert "hp_metric" not in scalars(logs / "version_0")

    # --ckpt_path last says which checkpoint it took; validate prints its own table and logs
    # apart from the training runs
    main(["validate", *SMALL, "--ckpt_path", "last"])
    captured = capsys.readouterr()
    assert "--ckpt_path last: lightning_logs/argmax/version_0/checkpoints/last.ckpt" in captured.err
    assert "DeepSets" in captured.err
    assert "run folder: lightning_logs/argmax/eval/version_0" in captured.out

    # predict writes a file in its run folder and says where; each prediction names its set
    main(["predict", *SMALL, "--ckpt_path", "last"])
    out = capsys.readouterr().out
    path = logs / "eval" / "version_1" / "predictions.pt"
    assert "written to lightning_logs/argmax/eval/version_1/predictions.pt" in out
    saved = torch.load(path, weights_only=True)
    assert sorted(saved) == ["mask", "predictions", "set_index", "x"]
    assert sum(p.shape[0] for p in saved["predictions"]) == 64  # val_sets
    assert saved["predictions"][0].shape[-1] == 1
    assert torch.cat(saved["set_index"]).tolist() == list(range(64))
    for prediction, x, mask in zip(saved["predictions"], saved["x"], saved["mask"]):
        assert x.shape[:2] == mask.shape == prediction.shape[:2]

    # a run that fails in its first step: one line, and its folder is gone
    bad_net = ["--model.init_args.net", "models/mlp.yaml", "--model.init_args.net.init_args.n=5"]
    line = fails(["fit", *SMALL, *bad_net], capsys)
    assert "at most n=5" in line
    assert sorted(p.name for p in logs.iterdir()) == ["eval", "version_0"]
    assert sorted(p.name for p in (logs / "eval").iterdir()) == ["version_0", "version_1"]

    # checkpoints that are missing, text, or cut short fail before anything is built
    (tmp_path / "notes.ckpt").write_text("not a checkpoint\n")
    last = (logs / "version_0" / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(last[: len(last) // 2])
    assert "no such file" in fails(["test", *SMALL, "--ckpt_path", "missing.ckpt"], capsys)
    for name in ("notes.ckpt", "cut.ckpt"):
        assert "not a PyTorch checkpoint" in fails(["test", *SMALL, f"--ckpt_path={name}"], capsys)
    assert "lr must be a positive" in fails(["fit", *SMALL, "--model.init_args.lr=-1"], capsys)
    assert len(list(logs.iterdir())) == 2 and len(list((logs / "eval").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--data.init_args.n_mni", "5"],
            "data (ArgmaxDataModule): unknown option 'n_mni' (did you mean n_min?); options: ",
        ),
        (
            ["--trainer.max_epocs", "2"],
            "unrecognized arguments: --trainer.max_epocs 2 (did you mean --trainer.max_epochs?)",
        ),
        (  # a prefix of an option is not that option
            ["--trainer.max_epoch", "1"],
            "unrecognized arguments: --trainer.max_epoch 1 (did you mean --trainer.max_epochs?)",
        ),
        (["--model.init_args.lr", "fast"], "model.lr (SymmetricModule): expected float, got fast"),
        (["--data.init_args.target", "rnak"], "data.target (ArgmaxDataModule): expected one of ["),
        (
            ["--model.init_args.net.init_args.hiden", "3"],
            "model.net (DeepSets): unknown option 'hiden' (did you mean hidden?)",
        ),
        (
            ["--model.init_args.net.init_args.pooling", "median"],
            "model.net.pooling (DeepSets): expected one of ['sum', 'mean', 'max'], got median",
        ),
        (
            ["--config", "typo.yaml"],
            "unknown config key 'trainer.max_epocs' (did you mean trainer.max_epochs?)",
        ),
    ],
)
def test_parser_mistakes_are_one_line_with_the_closest_option(
    args, expected, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "typo.yaml").write_text("trainer:\n  max_epocs: 2\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "argmax", *args])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "usage:" not in stderr  # the error line, nothing else
    assert expected in one_error_line(stderr)
    assert not (tmp_path / "lightning_logs").exists()


def test_a_command_leaves_no_warning_or_logging_filter_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    before = (list(warnings.filters), [list(logger.filters) for logger in loggers])
    main(["fit", "--config", "argmax", "--trainer.fast_dev_run=1", "--data.init_args.val_sets=8"])
    with pytest.raises(SystemExit):
        main(["fit", "--config", "argmax", "--model.init_args.lr=-1"])
    assert (list(warnings.filters), [list(logger.filters) for logger in loggers]) == before


def test_evaluating_without_a_checkpoint_warns_of_untrained_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["validate", *SMALL])
    assert "validate without --ckpt_path uses the untrained weights" in capsys.readouterr().err
    main(["fit", *SMALL])
    capsys.readouterr()
    main(["validate", *SMALL, "--ckpt_path", "last"])
    assert "untrained" not in capsys.readouterr().err


@pytest.mark.timeout(240)
def test_extending_a_one_cycle_run_is_one_line_and_keeps_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *SMALL])
    run = tmp_path / "lightning_logs" / "argmax" / "version_0"
    before = folder_contents(run)
    result = run_cli(
        ["fit", *SMALL, "--ckpt_path", "last", "--trainer.max_epochs", "3"], cwd=tmp_path
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "one-cycle schedule spans 5 steps but this run has 15" in line
    assert line.endswith("add --trainer.max_epochs 1")
    assert folder_contents(run) == before  # the failed resume wrote nothing there
    assert not (run.parent / "version_1").exists()
    finished = run_cli(["fit", *SMALL, "--ckpt_path", "last"], cwd=tmp_path)
    assert finished.returncode == 0
    assert "nothing to train: the run had already reached max_epochs=1" in finished.stdout


def test_checkpointing_off_and_the_progress_bar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", *SMALL, "--trainer.enable_checkpointing=false"])
    assert cli.trainer.checkpoint_callback is None
    assert not list(tmp_path.rglob("*.ckpt"))
    args = ["fit", "--config", "argmax", "--trainer.fast_dev_run=1", "--data.init_args.val_sets=8"]
    cli = main([*args, "--trainer.enable_progress_bar=true"])
    assert isinstance(cli.trainer.progress_bar_callback, ProgressBar)


def test_help_and_missing_config_guide_to_a_command(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: symlight ")
    for command in ("fit", "validate", "test", "predict", "tasks"):
        assert command in out
    with pytest.raises(SystemExit) as exit_info:
        main(["tasks", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: symlight tasks")
    line = fails(["fit"], capsys)
    assert "--config argmax.yaml" in line and "max_regression.yaml" in line
    line = fails(["fit", "--confg", "argmax.yaml"], capsys)
    assert "--confg is not an option: did you mean --config?" in line


def test_a_broken_plugin_fails_only_what_uses_it(tmp_path, monkeypatch, capsys):
    broken = EntryPoint("broken", "no_such_module_xyz:Task", symlight.app.plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(symlight.app.plugins, "entry_points", lambda group: [broken])
    main(["tasks"])
    out = capsys.readouterr().out
    assert "ArgmaxDataModule" in out
    assert "broken" in out and "BROKEN" in out and "no_such_module_xyz" in out
    monkeypatch.chdir(tmp_path)
    cli = main(
        ["fit", "--config", "argmax", "--trainer.fast_dev_run=1", "--data.init_args.val_sets=8"]
    )
    assert cli.trainer.global_step == 1
    assert "task plug-in broken is broken" in capsys.readouterr().err


def test_metrics_table_puts_each_validation_set_in_a_column():
    table = metrics_table(
        {"val/acc": 1.0, "val/acc@n=100": 0.5, "val/loss@n=100": 2.0}
    ).splitlines()
    assert table[0].split() == ["metric", "main", "@n=100"]
    assert table[1].split() == ["val/acc", "1", "0.5"]
    assert table[2].split() == ["val/loss", "2"]
