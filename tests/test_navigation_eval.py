"""Navigation evaluation: play and its metrics, the baselines and their controller, the trajectory
figure, and load_policy in a PettingZoo loop."""

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from symlight.tasks.navigation import CentralisedPolicy, NavigationDataModule, NavigationPPO
from symlight.tasks.navigation.baselines import (
    assignment,
    assignment_oracle,
    nearest_landmark,
    random_policy,
    steer,
)
from symlight.tasks.navigation.env import NavigationEnv, NavState
from symlight.tasks.navigation.evaluation import play, summary
from symlight.tasks.navigation.figures import trajectory_figure
from symlight.tasks.navigation.load import ObservationPolicy, load_policy
from symlight.tasks.navigation.parallel import state_from_observations

pytestmark = pytest.mark.filterwarnings("ignore:Your `IterableDataset` has `__len__`")


def noop(state: NavState) -> torch.Tensor:
    return torch.zeros(state.agent_pos.shape[:2], dtype=torch.long)


def crafted(monkeypatch, agent_pos, landmark_pos) -> None:
    """Make play's environment start every episode from these positions, at rest."""
    agents = torch.tensor(agent_pos, dtype=torch.float32)
    marks = torch.tensor(landmark_pos, dtype=torch.float32)

    def reset(self, seed=None):
        e = self.num_envs
        self.state = NavState(agents.expand(e, -1, -1), torch.zeros(e, *agents.shape),
                              marks.expand(e, -1, -1), 0)  # fmt: skip
        return self.state

    monkeypatch.setattr(NavigationEnv, "reset", reset)


# -- play and its metrics -------------------------------------------------------------------------
def test_play_is_deterministic_given_the_seed_and_the_policy():
    def run(seed: int, draws: int) -> dict:
        return play(random_policy(torch.Generator().manual_seed(draws)), 4, 16, seed)

    first, again, other = run(5, 0), run(5, 0), run(6, 0)
    for name in ("return", "coverage", "collisions"):
        torch.testing.assert_close(first[name], again[name], rtol=0, atol=0)
    assert not torch.equal(first["return"], other["return"])  # other instances
    assert not torch.equal(first["return"], run(5, 1)["return"])  # other actions
    # the oracle is a function of the state: the same instances give the same figures
    torch.testing.assert_close(play(assignment_oracle, 3, 8, 2), play(assignment_oracle, 3, 8, 2))


def test_agents_resting_on_their_landmarks_cover_them_all(monkeypatch):
    marks = [[-0.5, -0.5], [0.5, -0.5], [0.0, 0.6]]
    crafted(monkeypatch, marks, marks)
    result = play(noop, 3, 2, 0, max_steps=7)
    assert result["coverage"].tolist() == [1.0, 1.0]
    assert result["collisions"].tolist() == [0.0, 0.0]
    assert result["return"].abs().max() < 1e-6  # no distance left, no collision
    # one agent 0.05 off its landmark still covers it; 0.15 off does not
    crafted(monkeypatch, [[-0.45, -0.5], [0.5, -0.35], [0.0, 0.6]], marks)
    result = play(noop, 3, 1, 0, max_steps=3)
    assert result["coverage"].item() == pytest.approx(2 / 3)
    # the team return: per step half of minus the sum of the distances (0.05 + 0.15)
    assert result["return"].item() == pytest.approx(3 * 0.5 * -0.2, abs=1e-5)


def test_overlapping_agents_count_one_collision_each_per_step(monkeypatch):
    # two agents 0.2 apart (they collide below 0.3); after one step they have not moved yet
    crafted(monkeypatch, [[0.0, 0.0], [0.2, 0.0], [2.0, 2.0]], [[0.0, 0.0], [0.2, 0.0], [2.0, 2.0]])
    result = play(noop, 3, 1, 0, max_steps=1, arena=3.0)
    assert result["collisions"].item() == pytest.approx(2 / 3)  # agents 0 and 1: one each
    # team return: mean over agents of 0.5 * 0 - 0.5 * collisions
    assert result["return"].item() == pytest.approx(-0.5 * 2 / 3)
    assert result["coverage"].item() == 1.0


def test_trajectories_start_at_the_reset_and_end_at_the_last_step():
    result = play(nearest_landmark, 5, 4, 3, trajectory=True, max_steps=9)
    start = NavigationEnv(4, 5).reset(3)
    assert result["agent_pos"].shape == (10, 4, 5, 2)
    torch.testing.assert_close(result["agent_pos"][0], start.agent_pos)
    torch.testing.assert_close(result["landmark_pos"], start.landmark_pos)
    torch.testing.assert_close(play(nearest_landmark, 5, 4, 3, max_steps=9), {
        k: v for k, v in result.items() if k in ("return", "coverage", "collisions")
    })  # fmt: skip


def test_summary_gives_means_and_standard_errors():
    values = torch.tensor([1.0, 2.0, 3.0, 6.0])
    out = summary({"return": values, "coverage": torch.ones(4), "agent_pos": torch.zeros(2, 2)})
    assert out["return"] == pytest.approx(3.0)
    assert out["return_se"] == pytest.approx(float(values.std()) / 2)
    assert out["coverage_se"] == 0.0 and "agent_pos" not in out


# -- baselines ------------------------------------------------------------------------------------
def test_the_controller_reaches_a_target_and_stays_within_0_1():
    env = NavigationEnv(400, 1, max_steps=45)
    state = env.reset(0)
    target = (torch.rand(400, 1, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 0.9
    distances = []
    for _ in range(45):
        state, _, _ = env.step(steer(state, target))
        distances.append((state.agent_pos - target).norm(dim=-1))
    distances = torch.stack(distances)
    assert distances[24:].max() < 0.1  # arrived within 25 steps, and stays
    assert distances[-1].mean() < 0.05


def test_the_oracle_beats_random_and_nearest_landmark_at_three_agents():
    figures = {
        name: summary(play(policy, 3, 200, 11))
        for name, policy in [("random", random_policy(torch.Generator().manual_seed(0))),
                             ("nearest", nearest_landmark), ("oracle", assignment_oracle)]
    }  # fmt: skip
    oracle, nearest, rand = figures["oracle"], figures["nearest"], figures["random"]
    margin = 3 * (oracle["return_se"] + nearest["return_se"])
    assert oracle["return"] > nearest["return"] + margin > rand["return"]
    assert oracle["coverage"] > 0.95 > nearest["coverage"]


def test_the_baselines_are_equivariant_to_relabelling_agents_and_landmarks():
    gen = torch.Generator().manual_seed(3)
    e, n = 6, 7
    state = NavState(torch.rand(e, n, 2, generator=gen, dtype=torch.float64) * 3 - 1.5,
                     torch.randn(e, n, 2, generator=gen, dtype=torch.float64),
                     torch.rand(e, n, 2, generator=gen, dtype=torch.float64) * 3 - 1.5, 4)  # fmt: skip
    agents, marks = torch.randperm(n, generator=gen), torch.randperm(n, generator=gen)
    moved = NavState(state.agent_pos[:, agents], state.agent_vel[:, agents],
                     state.landmark_pos[:, marks], 4)  # fmt: skip
    for policy in (nearest_landmark, assignment_oracle):
        assert torch.equal(policy(moved), policy(state)[:, agents])
    landmark_of, agent_of = assignment(state)
    assert torch.equal(agent_of.gather(1, landmark_of), torch.arange(n).expand(e, n))


# -- the figure -----------------------------------------------------------------------------------
def test_the_trajectory_figure_draws_every_agent_and_landmark():
    rows = {f"N = {n}": play(nearest_landmark, n, 3, 0, trajectory=True) for n in (3, 20)}
    fig = trajectory_figure(rows, episodes=2)
    axes = fig.get_axes()
    assert len(axes) == 4
    for ax, n in zip(axes, (3, 3, 20, 20)):
        assert len(ax.lines) == 2 * n  # a path and a start per agent
        assert len(ax.patches) == 1 + 2 * n  # the arena, a circle per landmark, a disc per agent
        assert ax.get_title().startswith(f"N = {n}, coverage")


# -- load_policy ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A NavigationPPO after one tiny update (untrained: only its plumbing matters here)."""
    tmp = tmp_path_factory.mktemp("navigation_eval")
    L.seed_everything(0)
    task = NavigationDataModule(agents=[3], val_agents=[3], num_envs=8, steps_per_epoch=1,
                                val_instances=8, check_states=2, seed=0)  # fmt: skip
    module = NavigationPPO(partial(CentralisedPolicy, hidden=8, blocks=1), threads=1)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp, limit_val_batches=0,
                        enable_checkpointing=False, inference_mode=False)  # fmt: skip
    trainer.fit(module, datamodule=task)
    path = tmp / "navigation.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_load_policy_plays_mpe2_in_a_pettingzoo_loop_as_act_does(checkpoint):
    simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")
    policy = load_policy(checkpoint)
    module = NavigationPPO.load_from_checkpoint(checkpoint, weights_only=False).eval()
    env = simple_spread_v3.parallel_env(N=4)  # a team size it never trained on
    for seed in (0, 1):  # two episodes: the step count starts again at the reset
        obs, _ = env.reset(seed=seed)
        steps, total = 0, 0.0
        while env.agents:
            actions = policy(obs)
            assert policy.step == steps
            state = state_from_observations(obs)
            state = NavState(state.agent_pos, state.agent_vel, state.landmark_pos, steps)
            expected = module.act(state)[0].tolist()
            assert actions == dict(zip(obs, expected))
            obs, rewards, _, _, _ = env.step(actions)
            steps, total = steps + 1, total + sum(rewards.values())
        assert steps == 25 and total < 0


def test_observation_policy_plays_the_oracle_on_mpe2_as_in_the_batched_env():
    simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")
    env = simple_spread_v3.parallel_env(N=3)
    policy = ObservationPolicy(assignment_oracle)
    covered = 0.0
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        while env.agents:
            obs, _, _, _, _ = env.step(policy(obs))
        state = state_from_observations(obs)
        covered += float((torch.cdist(state.agent_pos, state.landmark_pos).amin(1) < 0.1).all())
    assert covered >= 5  # the oracle covers every landmark in (nearly) every episode


def test_load_policy_rejects_a_checkpoint_of_another_task(tmp_path):
    from symlight.models import DeepSets
    from symlight.tasks.argmax import ArgmaxDataModule
    from symlight.training import SymmetricModule

    task = ArgmaxDataModule(batches_per_epoch=2, val_sets=8, val_sizes=[], batch_size=8)
    module = SymmetricModule(partial(DeepSets, hidden=4, depth=2), element_shape=(1,))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        limit_val_batches=0, enable_checkpointing=False)  # fmt: skip
    trainer.fit(module, datamodule=task)
    path = tmp_path / "argmax.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(ValueError, match=r"argmax.ckpt' is not a navigation policy checkpoint: "
                                         r"it holds a model of the task ArgmaxDataModule"):  # fmt: skip
        load_policy(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_policy(tmp_path / "missing.ckpt")
