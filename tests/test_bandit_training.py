"""The learned bandit policy: equivariance over arms, training, load_policy, the CLI."""

from functools import partial
from pathlib import Path

import gymnasium
import lightning as L
import numpy as np
import pytest
import torch
from gymnasium import spaces

import symlight.tasks  # noqa: F401  (registers symlight/BernoulliBandit-v0)
from symlight.check import assert_equivariant
from symlight.cli import main
from symlight.core.rep import Rep
from symlight.models import DeepSets
from symlight.symmetry import SetSymmetry, permute, random_permutation
from symlight.tasks import ArgmaxDataModule
from symlight.tasks.bandit import (
    NUM_FEATURES,
    BanditDataModule,
    BanditPolicyGradient,
    PolicyFunction,
    Prior,
    arm_features,
    load_policy,
    sampling_logits,
)
from symlight.tasks.bandit.training import advantages, rewards_to_go
from symlight.training import SymmetricModule

from conftest import scalars

# The episode-spec stream has a length (for progress bars) and is loaded in-process.
pytestmark = pytest.mark.filterwarnings("ignore:Your `IterableDataset` has `__len__`")

ARMS = SetSymmetry(inputs={"x": 1}, out_order=1)


def small_policy(**kwargs) -> BanditPolicyGradient:
    net = partial(DeepSets, hidden=16, depth=3, pooling="max")
    return BanditPolicyGradient(net, **kwargs)


def random_observation(batch: int, k: int, horizon: int, gen: torch.Generator) -> dict:
    t = torch.randint(0, horizon, (batch,), generator=gen)
    weights = torch.rand(batch, k, generator=gen)
    pulls = torch.stack(
        [
            torch.multinomial(w, int(n), replacement=True, generator=gen).bincount(minlength=k)
            if n > 0
            else torch.zeros(k, dtype=torch.long)
            for w, n in zip(weights, t)
        ]
    )
    successes = torch.minimum(pulls, (pulls * torch.rand(batch, k, generator=gen)).round().long())
    return {"pulls": pulls, "successes": successes, "steps_left": horizon - t}


# -- equivariance ------------------------------------------------------------------------------
def test_features_permute_with_the_arms():
    gen = torch.Generator().manual_seed(0)
    obs = random_observation(6, 7, 40, gen)
    x = arm_features(obs["pulls"], obs["successes"], obs["steps_left"], dtype=torch.float64)
    assert x.shape == (6, 7, NUM_FEATURES) and torch.isfinite(x).all()
    perm = random_permutation(6, 7, generator=gen)
    moved = arm_features(
        obs["pulls"].gather(1, perm),
        obs["successes"].gather(1, perm),
        obs["steps_left"],
        dtype=torch.float64,
    )
    torch.testing.assert_close(moved, permute(x, perm, 1), rtol=0, atol=0)


@pytest.mark.parametrize("k", [1, 5, 30])
@pytest.mark.parametrize("train", [True, False])
def test_policy_is_equivariant_over_arms_in_float64_with_padding(k, train):
    gen = torch.Generator().manual_seed(k)
    module = small_policy().double()
    obs = random_observation(5, k, 50, gen)
    x = arm_features(obs["pulls"], obs["successes"], obs["steps_left"], dtype=torch.float64)
    # pad to k + 3 arms; sets of different sizes in one batch
    sizes = torch.tensor([k, max(1, k - 1), max(1, k // 2), 1, k])
    mask = torch.arange(k + 3)[None, :] < sizes[:, None]
    x = torch.cat([x, 10 * torch.rand(5, 3, NUM_FEATURES, dtype=torch.float64)], 1)
    x = x * mask[..., None] + 7.0 * ~mask[..., None]  # padding holds junk that must not leak
    batch = {"x": x, "mask": mask}
    result = assert_equivariant(
        module, batch, ARMS, num_samples=4, atol=1e-9, rtol=1e-9, train=train
    )
    assert result.max_abs_error < 1e-9
    # padded arms do not change the real logits
    trimmed = module({"x": x[:1, :k], "mask": mask[:1, :k]})
    torch.testing.assert_close(trimmed, module(batch)[:1, :k], rtol=1e-12, atol=1e-12)


def test_batched_policy_plays_permuted_arms_the_same_way():
    gen = torch.Generator().manual_seed(1)
    policy = PolicyFunction(small_policy().net.double(), greedy=True)
    obs = random_observation(64, 6, 30, gen)
    perm = random_permutation(64, 6, generator=gen)
    moved = {
        "pulls": obs["pulls"].gather(1, perm),
        "successes": obs["successes"].gather(1, perm),
        "steps_left": obs["steps_left"],
    }
    logits, moved_logits = policy.logits(obs), policy.logits(moved)
    torch.testing.assert_close(moved_logits, logits.gather(1, perm), rtol=1e-12, atol=1e-12)


class _ConstantLogits(torch.nn.Module):
    """Logit 0 for every arm, whatever its features."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:-1], 1, dtype=x.dtype)


@pytest.mark.parametrize("k", [2, 4, 11, 50])
def test_the_untouched_arms_are_one_choice_when_sampling(k):
    # one arm pulled, k - 1 untouched, every logit equal: the pulled arm and "a fresh arm" are
    # drawn half the time each, whatever k (a plain softmax would give the pulled arm 1/k)
    pulls = torch.zeros(1, k, dtype=torch.int64)
    pulls[0, 0] = 3
    probs = torch.softmax(sampling_logits(torch.zeros(1, k, dtype=torch.float64), pulls), -1)
    assert probs[0, 0].item() == pytest.approx(0.5, abs=1e-12)
    torch.testing.assert_close(
        probs[0, 1:], torch.full((k - 1,), 0.5 / (k - 1), dtype=torch.float64)
    )
    obs = {"pulls": pulls.expand(4000, k), "successes": torch.zeros(4000, k, dtype=torch.int64),
           "steps_left": torch.full((4000,), 10)}  # fmt: skip
    sampled = PolicyFunction(_ConstantLogits(), greedy=False)(obs, torch.Generator().manual_seed(0))
    assert abs((sampled == 0).double().mean().item() - 0.5) < 0.03  # se 0.008


def test_sampling_logits_leave_pulled_arms_alone_and_permute_with_the_arms():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 7, generator=gen, dtype=torch.float64)
    pulls = torch.randint(0, 3, (64, 7), generator=gen)
    out = sampling_logits(logits, pulls)
    untouched = (pulls == 0).sum(-1, keepdim=True).double()
    torch.testing.assert_close(out, torch.where(pulls == 0, logits - untouched.log(), logits))
    all_pulled = pulls + 1
    torch.testing.assert_close(sampling_logits(logits, all_pulled), logits, rtol=0, atol=0)
    perm = random_permutation(64, 7, generator=gen)
    moved = sampling_logits(logits.gather(1, perm), pulls.gather(1, perm))
    torch.testing.assert_close(moved, out.gather(1, perm), rtol=1e-12, atol=1e-12)


# -- the gradient estimate ---------------------------------------------------------------------
def test_advantages_are_rewards_to_go_against_the_other_episodes():
    # Three episodes (columns) of two pulls (rows): the rewards the environment returned.
    rewards = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    returns = rewards_to_go(rewards)
    torch.testing.assert_close(returns, torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 0.0]]))
    adv = advantages(returns, normalise=False)
    # leave-one-out: the baseline of an episode is the mean of the others at the same step
    torch.testing.assert_close(adv[0], torch.tensor([2.0 - 0.5, 1.0 - 1.0, 0.0 - 1.5]))
    torch.testing.assert_close(adv[1], torch.tensor([1.0 - 0.5, 1.0 - 0.5, 0.0 - 1.0]))
    assert advantages(returns).std() == pytest.approx(1.0)


# -- training ----------------------------------------------------------------------------------
def tiny_task(**kwargs) -> BanditDataModule:
    args = dict(
        k=[3, 4],
        horizon=20,
        num_envs=512,
        env_steps=10_000,
        steps_per_epoch=40,
        val_instances=400,
        test_instances=64,
        seed=0,
    )
    return BanditDataModule(**{**args, **kwargs})


def tiny_trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    args = dict(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        gradient_clip_val=1.0,
        inference_mode=False,
    )
    return L.Trainer(**{**args, **kwargs})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A policy trained a few seconds on k in {3, 4}, n = 20, its checkpoint and its task."""
    tmp = tmp_path_factory.mktemp("bandit")
    L.seed_everything(0)
    task = tiny_task()
    module = small_policy(lr=1e-2, figure=False)
    trainer = tiny_trainer(tmp, num_sanity_val_steps=0)
    before = trainer.validate(module, datamodule=task, verbose=False)[0]
    trainer.fit(module, datamodule=task)
    after = trainer.validate(module, datamodule=task, verbose=False)[0]
    path = tmp / "bandit.ckpt"
    trainer.save_checkpoint(path)
    return {"before": before, "after": after, "path": path, "module": module}


def test_a_short_training_run_lowers_regret(trained):
    before, after = trained["before"], trained["after"]
    # same fixed instances, same reward draws: the regret of the trained policy is lower
    assert after["val/regret"] < before["val/regret"] - 0.5, (before, after)
    assert after["val/regret"] < after["val/regret_random"]
    # the baselines are cached figures, identical at both validations
    assert after["val/regret_ucb1"] == before["val/regret_ucb1"]


def test_load_policy_plays_a_full_episode_in_a_gymnasium_loop(trained):
    policy = load_policy(trained["path"])
    for k, horizon in [(4, 20), (9, 35)]:  # also a number of arms never seen in training
        env = gymnasium.make("symlight/BernoulliBandit-v0", k=k, horizon=horizon)
        obs, info = env.reset(seed=3)
        steps, total = 0, 0.0
        while True:
            action = policy(obs)
            assert isinstance(action, int) and 0 <= action < k
            obs, reward, terminated, truncated, info = env.step(action)
            steps, total = steps + 1, total + float(reward)
            if terminated or truncated:
                break
        assert steps == horizon and truncated and 0 <= total <= horizon


def test_load_policy_rejects_a_checkpoint_of_another_task(tmp_path):
    task = ArgmaxDataModule(batches_per_epoch=2, val_sets=8, val_sizes=[], batch_size=8)
    module = SymmetricModule(partial(DeepSets, hidden=4, depth=2), element_shape=(1,))
    trainer = tiny_trainer(tmp_path, limit_val_batches=0)
    trainer.fit(module, datamodule=task)
    path = tmp_path / "argmax.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match="not a bandit policy checkpoint"):
        load_policy(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_policy(tmp_path / "missing.ckpt")
    (tmp_path / "notes.ckpt").write_text("# not a checkpoint\n")
    (tmp_path / "cut.ckpt").write_bytes(path.read_bytes()[:1000])  # a copy cut short
    for broken in ("notes.ckpt", "cut.ckpt"):
        with pytest.raises(ValueError, match=f"'.*{broken}' is not a checkpoint torch can read"):
            load_policy(tmp_path / broken)


def test_the_task_declares_one_logit_per_arm():
    task = BanditDataModule()
    assert task.rep_out == Rep(1, order=1) and task.element_shape == (NUM_FEATURES,)
    assert task.symmetry == ARMS
    with pytest.raises(ValueError, match=r"rep_out=1x1 \(one logit per arm\); got \(7,\) and 2x1"):
        small_policy(rep_out="2x1")
    with pytest.raises(ValueError, match="rep_out=1x1"):
        small_policy(rep_out=Rep(1, order=1, group="cyclic(5)"))


def test_bad_task_arguments_fail_clearly():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        BanditDataModule(k=0)
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        BanditDataModule(num_envs=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be an integer, got 2.5"):
        BanditDataModule(steps_per_epoch=2.5)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        BanditDataModule(horizon=[10, -1])
    with pytest.raises(ValueError, match="prior"):
        BanditDataModule(prior=(0.0, 1.0))
    with pytest.raises(ValueError, match="env='NoSuch-v0' is not a registered gymnasium id"):
        BanditDataModule(env="NoSuch-v0")
    with pytest.raises(ValueError, match="CartPole-v1 cannot be built as a bandit of k arms"):
        BanditDataModule(env="CartPole-v1").make_env(5, 10, 2)


# -- the command line ---------------------------------------------------------------------------
def test_cli_tests_a_checkpoint_at_another_k_and_horizon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = [
        "--config",
        "bandit.yaml",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--data.init_args.steps_per_epoch=2",
        "--data.init_args.horizon=[8]",
        "--data.init_args.train_horizon=[8]",
        "--data.init_args.val_instances=16",
        "--data.init_args.test_instances=32",
        "--model.init_args.net.init_args.hidden=8",
    ]
    cli = main(["fit", *tiny])
    assert isinstance(cli.model, BanditPolicyGradient)
    run = tmp_path / "lightning_logs" / "bandit" / "version_0"
    assert "val/regret" in scalars(run) and "equivariance/max_abs_error" in scalars(run)
    ckpt = run / "checkpoints" / "last.ckpt"
    cli = main(
        [
            "test",
            *tiny,
            "--ckpt_path",
            str(ckpt),
            "--data.init_args.k=13",
            "--data.init_args.horizon=25",
        ]
    )
    logged = cli.trainer.callback_metrics
    assert {"test/regret", "test/regret_ucb1", "test/pseudo_regret"} <= set(logged)
    assert 0 <= float(logged["test/reward"]) <= 25


def test_a_beta_prior_trains_and_sets_the_oracle(tmp_path):
    task = tiny_task(prior=(2.0, 5.0), k=[1, 3], horizon=6, steps_per_epoch=2, val_instances=32)
    assert task.prior == Prior(2.0, 5.0) and task.prior.expected_best(1) == pytest.approx(2 / 7)
    means = task.make_env(3, 6, 4096).reset(seed=0)[1]["means"]
    assert abs(float(means.mean()) - 2 / 7) < 0.01  # Beta(2, 5) instances, not uniform ones
    module = small_policy(figure=False)
    trainer = tiny_trainer(tmp_path, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=task)
    logged = trainer.callback_metrics
    # one arm: the regret's oracle is the prior's mean, 6 · 2/7, and no pull can be wrong
    assert float(logged["val/pseudo_regret@k=1,n=6"]) == 0.0
    reward = float(logged["val/reward@k=1,n=6"])
    assert float(logged["val/regret@k=1,n=6"]) == pytest.approx(6 * 2 / 7 - reward, abs=1e-5)


# -- any environment with the observation contract ------------------------------------------------
class BetaBandit(gymnasium.Env):
    """Bernoulli arms whose means are drawn from Beta(2, 5) at each reset; ``info`` stays empty."""

    def __init__(self, k: int = 3, horizon: int = 20) -> None:
        self.k, self.horizon = k, horizon
        counts = spaces.Box(0, horizon, shape=(k,), dtype=np.int64)
        self.observation_space = spaces.Dict(
            {"pulls": counts, "successes": counts,
             "steps_left": spaces.Box(0, horizon, shape=(), dtype=np.int64)}
        )  # fmt: skip
        self.action_space = spaces.Discrete(k)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.means = self.np_random.beta(2.0, 5.0, size=self.k)
        self.pulls, self.successes = np.zeros(self.k, np.int64), np.zeros(self.k, np.int64)
        return self._obs(), {}

    def step(self, action):
        reward = int(self.np_random.random() < self.means[action])
        self.pulls[action] += 1
        self.successes[action] += reward
        truncated = int(self.pulls.sum()) == self.horizon
        return self._obs(), float(reward), False, truncated, {}

    def _obs(self):
        left = np.array(self.horizon - self.pulls.sum(), dtype=np.int64)
        return {"pulls": self.pulls.copy(), "successes": self.successes.copy(), "steps_left": left}


BETA_BANDIT = "symlight_test/BetaBandit-v0"
if BETA_BANDIT not in gymnasium.registry:
    gymnasium.register(BETA_BANDIT, entry_point=BetaBandit)


def own_regret(policy: PolicyFunction, k: int, horizon: int, episodes: int = 500) -> np.ndarray:
    """Pseudo-regret of ``policy`` in each of ``episodes`` episodes of the test's own env (seeded
    the same way for every policy), from the env's own means.
    """
    env = gymnasium.vector.SyncVectorEnv([lambda: BetaBandit(k, horizon)] * episodes)
    obs, _ = env.reset(seed=123)
    means = np.stack([e.means for e in env.envs])
    regret = np.zeros(episodes)
    for _ in range(horizon):
        action = policy({key: torch.as_tensor(v) for key, v in obs.items()}).numpy()
        regret += means.max(1) - means[np.arange(episodes), action]
        obs, *_ = env.step(action)
    return regret


def test_training_on_a_third_party_env_lowers_its_regret_without_info(tmp_path):
    # The env returns an empty info: a training loop that read info (the arms' means) fails.
    task = BanditDataModule(env=BETA_BANDIT, prior=(2.0, 5.0), k=3, horizon=10, num_envs=128,
                            env_steps=1280, steps_per_epoch=40, val_instances=32, seed=0)  # fmt: skip
    L.seed_everything(0)
    module = small_policy(lr=1e-2, figure=False)
    before = own_regret(module.policy(greedy=True), 3, 10)
    trainer = tiny_trainer(tmp_path, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=task)
    after = own_regret(PolicyFunction(module.net, Prior(2.0, 5.0)), 3, 10)
    gain = before - after  # same episodes' means: a paired difference
    assert gain.mean() > 4 * gain.std() / len(gain) ** 0.5, (before.mean(), after.mean())
    # the task's own evaluation of that env has no means to read: regret, no pseudo-regret
    assert "val/regret" in trainer.callback_metrics
    assert "val/pseudo_regret" not in trainer.callback_metrics


def test_an_env_that_breaks_the_observation_contract_is_refused():
    if "symlight_test/FiveArms-v0" not in gymnasium.registry:  # ignores the k it is given
        gymnasium.register(
            "symlight_test/FiveArms-v0", entry_point=lambda k, horizon: BetaBandit(5, horizon)
        )
    task = BanditDataModule(env="symlight_test/FiveArms-v0", k=3, horizon=20)
    with pytest.raises(ValueError, match=r"symlight_test/FiveArms-v0 observes .* shape \(3,\)"):
        task.make_env(3, 20, 2)


def test_the_simulation_only_variant_reads_the_simulators_means_and_nothing_else(tmp_path):
    task = tiny_task(k=3, horizon=8, steps_per_epoch=2, val_instances=16)
    module = small_policy(advantage="expected_reward", figure=False)
    trainer = tiny_trainer(tmp_path / "simulator", num_sanity_val_steps=0)
    trainer.fit(module, datamodule=task)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["val/regret"])
    other = BanditDataModule(env=BETA_BANDIT, k=3, horizon=8, steps_per_epoch=2)
    with pytest.raises(ValueError, match="expected_reward reads the arm means a simulator hides"):
        tiny_trainer(tmp_path / "other").fit(
            small_policy(advantage="expected_reward"), datamodule=other
        )


def test_the_regret_figure_has_one_legend_for_all_panels():
    from symlight.tasks.bandit.evaluation import regret_figure

    steps = torch.arange(1, 51, dtype=torch.float32)
    curves = {"policy": steps.sqrt(), "random": 0.4 * steps, "thompson": 2 * steps.sqrt()}
    fig = regret_figure([(f"@k={k},n=50", curves) for k in (2, 3, 4, 5)])
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 4 and all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["policy", "random", "thompson"]
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 12
    # the y axis follows the learned and classic policies, not the random one
    assert panels[0].get_ylim()[1] == pytest.approx(1.15 * 2 * 50**0.5)
