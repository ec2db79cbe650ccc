"""NavigationPPO: GAE and the PPO loss, a short training run, resuming, the task's declaration and
its errors."""

import os
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from symlight.cli import main
from symlight.core.rep import Rep
from symlight.tasks.navigation import (
    CentralisedPolicy,
    NavigationDataModule,
    NavigationEnv,
    NavigationPPO,
)
from symlight.tasks.navigation.training import gae, ppo_loss, rollout

from conftest import TINY, fails

# The update stream has a length (for progress bars) and is loaded in-process.
pytestmark = pytest.mark.filterwarnings("ignore:Your `IterableDataset` has `__len__`")


def tiny_task(**kwargs) -> NavigationDataModule:
    args = dict(agents=[3], val_agents=[3], num_envs=32, steps_per_epoch=4, val_instances=64,
                check_states=4, seed=0)  # fmt: skip
    return NavigationDataModule(**{**args, **kwargs})


def small_module(**kwargs) -> NavigationPPO:
    net = partial(CentralisedPolicy, hidden=16, blocks=1, pooling="mean")
    args = dict(lr=1e-2, epochs=4, minibatches=4, threads=1, figure=False)
    return NavigationPPO(net, **{**args, **kwargs})


def tiny_trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    args = dict(max_epochs=1, logger=False, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                inference_mode=False)  # fmt: skip
    return L.Trainer(**{**args, **kwargs})


# -- the pieces of an update ----------------------------------------------------------------------
def test_gae_is_the_discounted_return_less_the_value_at_lambda_one():
    gen = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    advantages, returns = gae(rewards, values, gamma=0.9, lam=1.0)
    discount = 0.9 ** torch.arange(6.0)
    to_go = torch.stack([(rewards[t:] * discount[: 6 - t, None]).sum(0) for t in range(6)])
    torch.testing.assert_close(returns, to_go)
    torch.testing.assert_close(advantages, to_go - values)
    # at lambda = 0, one step of temporal difference, the last step terminal
    advantages, _ = gae(rewards, values, gamma=0.9, lam=0.0)
    following = torch.cat([values[1:], torch.zeros(1, 3)])
    torch.testing.assert_close(advantages, rewards + 0.9 * following - values)


def test_the_clipped_surrogate_stops_pushing_past_the_clip_range():
    logits = torch.zeros(4, 2, 5, requires_grad=True)
    actions = torch.zeros(4, 2, dtype=torch.long)
    value, returns = torch.zeros(4), torch.zeros(4)
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # old probabilities: 1/5 (ratio 1), or far below / above the current 1/5 (ratio 2, 0.5)
    old = torch.log(torch.tensor([[0.2], [0.1], [0.2], [0.4]])).expand(4, 2)
    loss, stats = ppo_loss(logits, value, actions, old, advantages, returns, 0.2, 0.5, 0.0)
    loss.backward()
    pushed = logits.grad[:, :, 0].abs().sum(1)
    assert pushed[0] > 0 and pushed[2] > 0  # inside the range: the gradient moves the logit
    assert pushed[1] == 0 and pushed[3] == 0  # ratio 2 with A > 0, 0.5 with A < 0: clipped
    assert stats["clip_fraction"] == 0.5


def test_a_rollout_keeps_what_the_environment_returned():
    env = NavigationEnv(8, 3)
    net = CentralisedPolicy(hidden=8, blocks=1)
    played = rollout(net, env, seed=5, generator=torch.Generator().manual_seed(0))
    assert played.actions.shape == (25, 8, 3) and played.rewards.shape == (25, 8)
    # replaying the actions from the same seed gives the same rewards
    state = env.reset(5)
    for t in range(25):
        torch.testing.assert_close(state.agent_pos, played.agent_pos[t])
        state, rewards, _ = env.step(played.actions[t])
        torch.testing.assert_close(rewards.mean(1), played.rewards[t])
    states = played.states(torch.tensor([0, 8 * 24 + 7]))
    torch.testing.assert_close(states.agent_pos[1], played.agent_pos[24, 7])
    assert states.step.tolist() == [0, 24]


# -- training -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small policy trained for a few seconds on a team of one (it learns to reach its
    landmark), validated before and after on the same fixed instances.
    """
    tmp = tmp_path_factory.mktemp("navigation")
    L.seed_everything(0)
    task = tiny_task(agents=[1], val_agents=[1], steps_per_epoch=10)
    module = small_module(greedy_eval=False)
    trainer = tiny_trainer(tmp, max_epochs=2, check_val_every_n_epoch=100)
    before = trainer.validate(module, datamodule=task, verbose=False)[0]
    trainer.fit(module, datamodule=task)
    after = trainer.validate(module, datamodule=task, verbose=False)[0]
    path = tmp / "navigation.ckpt"
    trainer.save_checkpoint(path)
    return {"before": before, "after": after, "path": path, "module": module}


def test_a_short_training_run_raises_the_return(trained):
    before, after = trained["before"], trained["after"]
    # the same fixed instances and action draws before and after: the return is higher
    assert after["val/return@N=1"] > before["val/return@N=1"] + 1.0, (before, after)
    # the baselines are figures of their own, the same at both validations
    assert after["val/return_oracle@N=1"] == before["val/return_oracle@N=1"]
    assert after["val/return_oracle@N=1"] > after["val/return_random@N=1"]
    assert 0 <= after["val/coverage@N=1"] <= 1 and after["val/collisions@N=1"] == 0
    # the equivariance check's states were measured at each validation
    assert after["val/coverage"] == after["val/coverage@N=1"]


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    def run(epochs: int, ckpt: Path | None = None) -> NavigationPPO:
        L.seed_everything(0)
        module = small_module()
        trainer = tiny_trainer(
            tmp_path, max_epochs=epochs, limit_val_batches=0, enable_checkpointing=False
        )
        trainer.fit(
            module, datamodule=tiny_task(steps_per_epoch=2), ckpt_path=ckpt, weights_only=False
        )
        if ckpt is None and epochs == 1:
            trainer.save_checkpoint(tmp_path / "half.ckpt")
        return module

    whole = run(2)
    run(1)
    resumed = run(2, tmp_path / "half.ckpt")
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


# -- the declaration and its errors -----------------------------------------------------------------
def test_the_task_declares_logits_per_agent_over_agents_and_landmarks():
    task = NavigationDataModule()
    assert task.rep_out == Rep(5, (1, 0)) and task.element_shape == (2,)
    symmetry = task.symmetry
    assert dict(symmetry.inputs) == {
        "agent_pos": (1, 0), "agent_vel": (1, 0), "landmark_pos": (0, 1)
    }  # fmt: skip
    assert symmetry.out_order == (1, 0) and symmetry.groups == (None, None)  # S_N x S_M
    assert task.val_names == ["@N=3", "@N=10", "@N=20"]
    assert [task.episode_steps(n) for n in (3, 12)] == [25, 50]
    assert NavigationDataModule(arena=2.0).episode_steps(3) == 50


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="agents must be a positive integer"):
        NavigationDataModule(agents=[3, 0])
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        NavigationDataModule(num_envs=0)
    with pytest.raises(ValueError, match="arena must be a positive half-width"):
        NavigationDataModule(arena=-1.0)
    with pytest.raises(ValueError, match=r"rep_out=5x\(1,0\) \(five logits per agent\)"):
        small_module(rep_out="1x1")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        small_module(epochs=0)


@pytest.fixture(scope="module")
def argmax_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("argmax_run")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        main(["fit", "--config", "argmax", *TINY])
    finally:
        os.chdir(cwd)
    return folder / "lightning_logs" / "argmax" / "version_0" / "checkpoints" / "last.ckpt"


def test_a_checkpoint_of_another_task_is_one_line(argmax_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = fails(["validate", "--config", "navigation", f"--ckpt_path={argmax_checkpoint}"], capsys)
    assert "checkpoint of the task ArgmaxDataModule" in line
    assert "this command's task is NavigationDataModule" in line


@pytest.mark.slow
def test_the_shipped_config_learns_to_cover_three_landmarks(tmp_path, monkeypatch):
    """Two thirds of navigation.yaml's updates, validated at N = 3 only (minutes)."""
    monkeypatch.chdir(tmp_path)
    cli = main(
        ["fit", "--config", "navigation", "--trainer.max_epochs=10",
         "--trainer.enable_progress_bar=false", "--data.init_args.val_agents=[3]"]
    )  # fmt: skip
    logged = {name: float(value) for name, value in cli.trainer.callback_metrics.items()}
    assert logged["val/return@N=3"] > logged["val/return_nearest@N=3"]
    assert logged["val/coverage@N=3"] >= 0.8 * logged["val/coverage_oracle@N=3"]
    assert logged["equivariance/max_rel_error"] < 1e-4
