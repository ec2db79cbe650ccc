"""The batched cooperative-navigation environment: parity with mpe2, seeding, batching, metrics."""

import math

import numpy as np
import pytest
import torch

from symlight.tasks.navigation.env import (
    ACTIONS,
    NavigationEnv,
    NavState,
    collisions,
    coverage,
    default_arena,
    default_max_steps,
    global_reward,
    observations,
)

F64 = torch.float64
MOVES = 5.0 * torch.tensor([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=F64)


def make_state(agent_pos, landmark_pos, agent_vel=None, step=0, dtype=F64) -> NavState:
    pos = torch.tensor(agent_pos, dtype=dtype)[None]
    vel = torch.zeros_like(pos) if agent_vel is None else torch.tensor(agent_vel, dtype=dtype)[None]
    return NavState(pos, vel, torch.tensor(landmark_pos, dtype=dtype)[None], step)


# --- parity with mpe2.simple_spread_v3 -----------------------------------------------------------


@pytest.fixture
def mpe2_env():
    simple_spread = pytest.importorskip("mpe2.simple_spread_v3")
    env = simple_spread.parallel_env(N=3, max_cycles=25, continuous_actions=False)
    yield env
    env.close()


def world_state(env) -> NavState:
    """mpe2's world (positions and velocities) as a float64 NavState of one instance."""
    world = env.unwrapped.world

    def stack(values):
        return torch.tensor(np.array([np.array(v, dtype=np.float64) for v in values]))[None]

    return NavState(
        stack(a.state.p_pos for a in world.agents),
        stack(a.state.p_vel for a in world.agents),
        stack(lm.state.p_pos for lm in world.landmarks),
        0,
    )


def world_observations(env) -> np.ndarray:
    """mpe2's observations in float64 (its scenario's vectors before the cast to float32)."""
    world, scenario = env.unwrapped.world, env.unwrapped.scenario
    return np.stack([scenario.observation(agent, world) for agent in world.agents])


def play_against_mpe2(env, start: NavState, seed: int) -> list[float]:
    """Play 25 random steps in mpe2 and in NavigationEnv from ``start``; assert they agree.

    Returns the number of colliding pairs after each step.
    """
    ours = NavigationEnv(1, 3, dtype=F64)
    ours.state = start
    rng = np.random.default_rng(seed)
    pairs = []
    for t in range(25):
        actions = rng.integers(ACTIONS, size=3)
        obs, rewards, terms, truncs, _ = env.step(
            {f"agent_{i}": int(a) for i, a in enumerate(actions)}
        )
        state, reward, done = ours.step(torch.as_tensor(actions)[None])
        mine = observations(state)[0].numpy()
        np.testing.assert_allclose(
            mine, world_observations(env), rtol=0, atol=1e-9, err_msg=f"step {t}"
        )
        np.testing.assert_allclose(mine, np.stack(list(obs.values())), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(reward[0].numpy(), list(rewards.values()), rtol=0, atol=1e-9)
        assert not any(terms.values())
        assert done == all(truncs.values()) == (t == 24)
        pairs.append(collisions(state).sum().item() / 2)
    return pairs


@pytest.mark.parametrize("seed", [0, 1])
def test_plays_mpe2_episodes_from_its_reset(mpe2_env, seed):
    obs, _ = mpe2_env.reset(seed=seed)
    start = world_state(mpe2_env)
    np.testing.assert_allclose(
        observations(start)[0].numpy(), np.stack(list(obs.values())), rtol=1e-6, atol=1e-6
    )
    play_against_mpe2(mpe2_env, start, seed)


def test_plays_mpe2_episodes_through_collisions(mpe2_env):
    """Agents start overlapping (0 and 1) and 1 mm beyond contact (0 and 2), where only the
    softness of mpe2's contact force (its margin) pushes them apart."""
    mpe2_env.reset(seed=3)
    agents = mpe2_env.unwrapped.world.agents
    for agent, offset in zip(agents, ([0.0, 0.0], [0.1, 0.05], [-0.301, 0.0])):
        agent.state.p_pos = np.array([0.2, -0.3]) + np.array(offset)
    start = world_state(mpe2_env)
    pairs = play_against_mpe2(mpe2_env, start, seed=3)
    assert pairs[0] >= 1  # a collision was penalised (and mpe2 agreed on the rewards)

    # The contact forces acted: after one step from rest, the velocities are theirs alone.
    env = NavigationEnv(1, 3, dtype=F64)
    env.state = start
    state, _, _ = env.step(torch.zeros(1, 3, dtype=torch.long))
    assert state.agent_vel[0, 1].abs().min() > 0.1  # 0.1 * a force above 1 on both axes
    assert -1e-2 < state.agent_vel[0, 2, 0] < -1e-4  # pushed away from agent 0 along -x
    assert abs(state.agent_vel[0, 2, 1]) < 1e-12


# --- state, seeding, episode length --------------------------------------------------------------


def test_defaults_scale_the_arena_and_episode_length_with_the_agents():
    assert default_arena(3) == 1.0 and default_max_steps(3) == 25  # mpe2's
    assert default_arena(12) == 2.0 and default_max_steps(12) == 50
    env = NavigationEnv(2, agents=20)
    assert env.landmarks == 20 and env.max_steps == 65
    assert env.arena == pytest.approx(math.sqrt(20 / 3))
    # constant density: N agents on an area of (2 * arena)^2
    assert 20 / (2 * env.arena) ** 2 == pytest.approx(3 / 4)


def test_reset_is_reproducible_and_seeds_differ():
    env = NavigationEnv(64, agents=5, landmarks=4, arena=2.0, dtype=F64)
    a, b = env.reset(seed=7), env.reset(seed=7)
    for name in ("agent_pos", "agent_vel", "landmark_pos"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    c = env.reset(seed=8)
    d = env.reset()  # continues the stream of seed 8
    assert not torch.equal(a.agent_pos, c.agent_pos) and not torch.equal(c.agent_pos, d.agent_pos)
    assert a.agent_pos.shape == (64, 5, 2) and a.landmark_pos.shape == (64, 4, 2)
    assert a.step == 0 and not a.agent_vel.any()
    for x in (a.agent_pos, a.landmark_pos):
        assert x.abs().max() <= 2.0 and x.abs().max() > 1.9  # uniform over the whole arena
    # An independent environment with the same seed draws the same instances.
    other = NavigationEnv(64, agents=5, landmarks=4, arena=2.0, dtype=F64).reset(seed=7)
    assert torch.equal(other.landmark_pos, a.landmark_pos)


def test_episodes_end_after_max_steps():
    env = NavigationEnv(3, agents=2, max_steps=3)
    env.reset(seed=0)
    done = [env.step(torch.zeros(3, 2, dtype=torch.long))[2] for _ in range(3)]
    assert done == [False, False, True] and env.state.step == 3
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(3, 2, dtype=torch.long))
    assert env.reset(seed=0).step == 0


def test_batching_equals_playing_instances_one_by_one():
    env = NavigationEnv(6, agents=4, landmarks=3, dtype=F64)
    state = env.reset(seed=1)
    # pack them close, so that contact forces act between some of them
    state = NavState(0.4 * state.agent_pos, state.agent_vel, state.landmark_pos, 0)
    env.state = state
    singles = []
    for i in range(6):
        single = NavigationEnv(1, agents=4, landmarks=3, dtype=F64)
        single.state = NavState(
            state.agent_pos[i : i + 1], state.agent_vel[i : i + 1], state.landmark_pos[i : i + 1]
        )
        singles.append(single)
    gen = torch.Generator().manual_seed(0)
    hits = 0
    for _ in range(10):
        actions = torch.randint(ACTIONS, (6, 4), generator=gen)
        batch, rewards, _ = env.step(actions)
        hits += collisions(batch).sum().item()
        for i, single in enumerate(singles):
            one, reward, _ = single.step(actions[i : i + 1])
            torch.testing.assert_close(
                one.agent_pos, batch.agent_pos[i : i + 1], rtol=0, atol=1e-12
            )
            torch.testing.assert_close(
                one.agent_vel, batch.agent_vel[i : i + 1], rtol=0, atol=1e-12
            )
            torch.testing.assert_close(reward, rewards[i : i + 1], rtol=0, atol=1e-12)
    assert hits > 0


def test_relabelling_agents_and_landmarks_permutes_the_step():
    env = NavigationEnv(4, agents=5, landmarks=6, dtype=F64)
    start = env.reset(seed=2)
    start = NavState(0.3 * start.agent_pos, start.agent_vel, start.landmark_pos, 0)  # contacts
    actions = torch.randint(ACTIONS, (4, 5), generator=torch.Generator().manual_seed(1))
    p, q = torch.tensor([3, 0, 4, 1, 2]), torch.tensor([5, 2, 0, 1, 4, 3])
    env.state = start
    state, rewards, _ = env.step(actions)
    env.state = NavState(start.agent_pos[:, p], start.agent_vel[:, p], start.landmark_pos[:, q], 0)
    permuted, permuted_rewards, _ = env.step(actions[:, p])
    torch.testing.assert_close(permuted.agent_pos, state.agent_pos[:, p], rtol=0, atol=1e-12)
    torch.testing.assert_close(permuted.agent_vel, state.agent_vel[:, p], rtol=0, atol=1e-12)
    torch.testing.assert_close(permuted_rewards, rewards[:, p], rtol=0, atol=1e-12)


# --- observations and metrics on crafted states -------------------------------------------------


def test_observation_layout():
    state = make_state(
        [[0.0, 0.0], [0.2, 0.0], [1.0, 1.0]],
        [[0.05, 0.0], [1.0, 1.09]],
        agent_vel=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
    )
    obs = observations(state)
    assert obs.shape == (1, 3, 4 + 2 * 2 + 4 * 2)
    expected = [0.3, 0.4, 0.2, 0.0, -0.15, 0.0, 0.8, 1.09, -0.2, 0.0, 0.8, 1.0, 0, 0, 0, 0]
    torch.testing.assert_close(obs[0, 1], torch.tensor(expected, dtype=F64))
    one = observations(make_state([[0.5, 0.5]], [[0.0, 1.0]]))  # one agent: no other agents
    torch.testing.assert_close(one[0, 0], torch.tensor([0, 0, 0.5, 0.5, -0.5, 0.5], dtype=F64))


def test_collisions_coverage_and_global_reward():
    state = make_state(
        [[0.0, 0.0], [0.2, 0.0], [1.0, 1.0], [1.0, 1.31]],
        [[0.05, 0.0], [1.0, 1.09], [-1.0, -1.0], [2.0, 2.0]],
    )
    assert collisions(state).tolist() == [[1, 1, 0, 0]]  # 0.2 < 0.3 apart; 0.31 is not a collision
    assert coverage(state).item() == pytest.approx(2 / 4)
    assert coverage(state, radius=0.01).item() == 0
    nearest = 0.05 + 0.09 + math.sqrt(2) + math.hypot(1.0, 0.69)
    assert global_reward(state).item() == pytest.approx(-nearest)
    env = NavigationEnv(1, agents=4, local_ratio=0.25, dtype=F64)
    env.state = state
    _, rewards, _ = env.step(torch.zeros(1, 4, dtype=torch.long))
    after = env.state
    expected = 0.75 * global_reward(after)[:, None] - 0.25 * collisions(after)
    torch.testing.assert_close(rewards, expected)
    assert rewards[0, 0] < rewards[0, 2]  # the colliding agent pays


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 1, "agents": 0}, "agents"),
        ({"num_envs": 1, "agents": 3, "landmarks": 0}, "landmarks"),
        ({"num_envs": 1, "agents": 2.5}, "agents"),
        ({"num_envs": 1, "max_steps": 0}, "max_steps"),
        ({"num_envs": 1, "arena": -1.0}, "arena"),
        ({"num_envs": 1, "local_ratio": 1.5}, "local_ratio"),
    ],
)
def test_bad_arguments_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NavigationEnv(**kwargs)


@pytest.mark.parametrize(
    "actions, match",
    [
        (torch.zeros(2, 4, dtype=torch.long), "shape"),
        (torch.zeros(3, dtype=torch.long), "shape"),
        (torch.tensor([[0, 1, 5], [0, 0, 0]]), "0..4"),
        (torch.tensor([[0, -1, 2], [0, 0, 0]]), "0..4"),
        (torch.zeros(2, 3), "integers"),
    ],
)
def test_bad_actions_are_errors(actions, match):
    env = NavigationEnv(2, agents=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(actions)
    assert env.state.step == 0  # nothing was stepped


def test_state_is_checked_and_needs_a_reset():
    env = NavigationEnv(2, agents=3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="agent_pos"):
        env.state = make_state([[0.0, 0.0]] * 3, [[0.0, 0.0]] * 3)  # one instance, not two


# --- the PettingZoo ParallelEnv and states from observations -------------------------------------


def test_parallel_env_passes_pettingzoo_api_test():
    parallel_test = pytest.importorskip("pettingzoo.test")
    from symlight.tasks.navigation.parallel import SpreadParallelEnv

    env = SpreadParallelEnv(agents=4, landmarks=2, max_steps=7)
    parallel_test.parallel_api_test(env, num_cycles=20)
    assert env.observation_space("agent_3").shape == (4 + 2 * 2 + 4 * 3,)


def test_parallel_env_plays_an_episode_as_mpe2_does():
    pytest.importorskip("pettingzoo")
    from symlight.tasks.navigation.parallel import SpreadParallelEnv, state_from_observations

    env = SpreadParallelEnv(agents=3)
    obs, infos = env.reset(seed=5)
    assert list(obs) == env.agents == ["agent_0", "agent_1", "agent_2"] and infos["agent_0"] == {}
    again, _ = env.reset(seed=5)
    assert all(np.array_equal(obs[a], again[a]) for a in obs)
    assert obs["agent_0"].dtype == np.float32 and env.state().shape == (3 * 18,)
    rng = np.random.default_rng(0)
    for t in range(25):
        state = state_from_observations(obs, dtype=F64)
        torch.testing.assert_close(state.agent_pos, env.env.state.agent_pos, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            state.landmark_pos, env.env.state.landmark_pos, rtol=0, atol=1e-6
        )
        actions = {a: rng.integers(ACTIONS) for a in env.agents}
        obs, rewards, terms, truncs, _ = env.step(actions)
        assert (
            set(rewards)
            == set(terms)
            == set(truncs)
            == set(obs)
            == {"agent_0", "agent_1", "agent_2"}
        )
        assert all(isinstance(r, float) for r in rewards.values()) and not any(terms.values())
        assert all(truncs.values()) == (t == 24)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_parallel_env_rejects_bad_actions():
    pytest.importorskip("pettingzoo")
    from symlight.tasks.navigation.parallel import SpreadParallelEnv

    env = SpreadParallelEnv(agents=2)
    env.reset(seed=0)
    for actions, match in [
        ({"agent_0": 0}, "agent_1"),
        ({"agent_0": 0, "agent_1": 5}, "0..4"),
        ({"agent_0": 0, "agent_1": -1}, "0..4"),
        ({"agent_0": 0, "agent_1": 1.0}, "integers"),
    ]:
        with pytest.raises(ValueError, match=match):
            env.step(actions)


def test_state_from_mpe2_observations_recovers_its_world(mpe2_env):
    from symlight.tasks.navigation.parallel import state_from_observations

    obs, _ = mpe2_env.reset(seed=11)
    rng = np.random.default_rng(11)
    for _ in range(6):  # with velocities
        obs, *_ = mpe2_env.step({a: int(rng.integers(ACTIONS)) for a in mpe2_env.agents})
    world = world_state(mpe2_env)
    state = state_from_observations(obs)
    assert state.agent_pos.dtype == torch.float32 and state.agent_pos.shape == (1, 3, 2)
    for name in ("agent_pos", "agent_vel", "landmark_pos"):
        torch.testing.assert_close(
            getattr(state, name).double(), getattr(world, name), rtol=0, atol=1e-6
        )
    assert state_from_observations(obs, landmarks=3).landmark_pos.shape == (1, 3, 2)
    with pytest.raises(ValueError, match="show 3 landmarks, not 4"):
        state_from_observations(obs, landmarks=4)
    with pytest.raises(ValueError, match="not"):
        state_from_observations({"agent_0": obs["agent_0"], "agent_1": obs["agent_1"][:16]})
    with pytest.raises(ValueError, match="not"):
        state_from_observations({"agent_0": obs["agent_0"][:17]})  # odd: no whole landmark
    with pytest.raises(ValueError, match="empty"):
        state_from_observations({})
