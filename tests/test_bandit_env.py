import importlib
import warnings
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import symlight.tasks
from symlight.tasks.bandit import (
    ENV_ID,
    UNIFORM,
    BayesOptimalPolicy,
    BernoulliBanditEnv,
    BernoulliBanditVectorEnv,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    Prior,
    RandomPolicy,
    ThompsonPolicy,
    UCB1Policy,
    batch_observation,
    bayes_optimal_value,
    make_env,
    play,
    summarize,
)
from symlight.tasks.bandit.dp import DenseDP, MultisetDP
from symlight.tasks.bandit.play import pseudo_regret
from symlight.tasks.bandit.prior import beta, standard_gamma


@pytest.fixture(autouse=True)
def one_thread():
    # Small tensors: extra threads only add contention on a loaded machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def play_instances(policy, b: int, k: int, n: int, seed: int, prior: Prior = UNIFORM):
    """``policy`` on ``b`` instances of the vector env seeded ``seed``: episodes and means."""
    env = make_env(ENV_ID, b, k, n, prior)
    episodes = play(policy, env, seed, torch.Generator().manual_seed(seed))
    return episodes, env.means


def replay(env, actions, seed):
    """Rewards, observations and means of a single env over one episode of ``actions``."""
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info["means"])]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, info["means"]))
    return out


# -- the single environment ----------------------------------------------------------------------
def test_env_checker_passes():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render.*")
        check_env(BernoulliBanditEnv(k=5, horizon=20))
        check_env(BernoulliBanditEnv(k=3, horizon=10, prior=(2.0, 0.5)))
        check_env(gym.make(ENV_ID, k=4, horizon=8).unwrapped)


def test_registered_after_importing_tasks():
    env = gym.make("symlight/BernoulliBandit-v0", k=5, horizon=100)
    assert isinstance(env.unwrapped, BernoulliBanditEnv)
    assert (env.unwrapped.k, env.unwrapped.horizon) == (5, 100)
    obs, info = env.reset(seed=0)
    assert obs["pulls"].shape == (5,) and int(obs["steps_left"]) == 100
    vec = gym.make_vec(ENV_ID, num_envs=3, k=5, horizon=10)
    assert isinstance(vec, BernoulliBanditVectorEnv) and vec.num_envs == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # re-importing must not re-register (gymnasium warns)
        importlib.reload(symlight.tasks.bandit)
        importlib.reload(symlight.tasks)


def test_seeding_is_reproducible():
    env = BernoulliBanditEnv(k=4, horizon=30)
    actions = np.random.default_rng(0).integers(4, size=30).tolist()
    a, b = replay(env, actions, seed=7), replay(env, actions, seed=7)
    assert [r for _, r, _ in a] == [r for _, r, _ in b]
    np.testing.assert_array_equal(a[0][2], b[0][2])
    c = replay(env, actions, seed=8)
    assert not np.array_equal(a[0][2], c[0][2])
    # Unseeded resets continue the seeded stream deterministically, with fresh means.
    env.reset(seed=7)
    m1 = env.reset()[1]["means"]
    env.reset(seed=7)
    m2 = env.reset()[1]["means"]
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(m1, a[0][2])


def test_truncated_not_terminated_at_horizon():
    env = BernoulliBanditEnv(k=3, horizon=5)
    obs, _ = env.reset(seed=1)
    for t in range(5):
        obs, r, terminated, truncated, info = env.step(t % 3)
        assert terminated is False
        assert truncated is (t == 4)
        assert int(obs["steps_left"]) == 4 - t and obs["pulls"].sum() == t + 1
        assert r in (0.0, 1.0) and obs["successes"].sum() <= obs["pulls"].sum()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_rewards_follow_the_means():
    env = BernoulliBanditEnv(k=3, horizon=9000)
    p = np.array([0.1, 0.5, 0.9])
    obs, info = env.reset(seed=3, options={"means": p})
    np.testing.assert_allclose(info["means"], p, atol=1e-9)
    for t in range(9000):
        obs, *_ = env.step(t % 3)
    freq = obs["successes"] / obs["pulls"]
    se = np.sqrt(p * (1 - p) / 3000)
    assert np.all(np.abs(freq - p) < 4 * se), freq


@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (2.0, 5.0)])
def test_means_follow_the_prior(a, b):
    env = BernoulliBanditVectorEnv(4096, k=5, horizon=3, prior=Prior(a, b))
    means = env.reset(seed=0)[1]["means"].flatten()
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(float(means.mean()) - mean) < 4 * (var / means.numel()) ** 0.5
    assert abs(float(means.var()) - var) < 0.05 * var
    # the single env draws the same means from the same prior
    single = BernoulliBanditEnv(k=5, horizon=3, prior=(a, b))
    np.testing.assert_array_equal(single.reset(seed=3)[1]["means"], env.means[3].numpy())
    if a == b == 1.0:  # deciles of U[0, 1]
        q = torch.quantile(means, torch.linspace(0.1, 0.9, 9, dtype=torch.float64))
        assert torch.allclose(q, torch.linspace(0.1, 0.9, 9, dtype=torch.float64), atol=0.01)


def test_reward_streams_look_independent():
    """The counter-based stream: no correlation between neighbouring seeds or successive pulls."""
    n, steps = 1024, 400
    env = BernoulliBanditVectorEnv(n, k=2, horizon=steps)
    env.reset(seed=0, options={"means": torch.full((n, 2), 0.5)})
    rewards = torch.stack([env.step(torch.zeros(n, dtype=torch.long))[1] for _ in range(steps)], 1)
    x = (rewards.double() - 0.5) * 2  # +-1, variance 1
    se = 1 / (n * steps) ** 0.5
    assert abs(float(x.mean())) < 4 * se
    assert abs(float((x[1:] * x[:-1]).mean())) < 4 * se  # instance i and i + 1 (seeds s, s + 1)
    assert abs(float((x[:, 1:] * x[:, :-1]).mean())) < 4 * se  # pull t and t + 1


def test_bad_input_errors():
    for kwargs, match in [
        ({"k": 0}, "k=0"),
        ({"horizon": 0}, "horizon=0"),
        ({"prior": "x"}, "prior"),
        ({"prior": (0.0, 1.0)}, "must be > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            BernoulliBanditEnv(**kwargs)
        with pytest.raises(ValueError, match=match):
            BernoulliBanditVectorEnv(2, **kwargs)
    with pytest.raises(ValueError, match="k=0"):
        gym.make(ENV_ID, k=0)
    env = BernoulliBanditEnv(k=5, horizon=10)
    env.reset(seed=0)
    for bad in [5, -1, 1.5, "a", [0, 1]]:
        with pytest.raises(ValueError, match=r"outside Discrete\(5\)"):
            env.step(bad)
    vec = BernoulliBanditVectorEnv(3, k=5, horizon=10)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(torch.zeros(3, dtype=torch.long))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 5 of instance 1 is outside Discrete\(5\)"):
        vec.step(torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="shape"):
        vec.step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        vec.step(torch.zeros(3))
    with pytest.raises(ValueError, match="non-negative"):
        vec.reset(seed=[1, -2, 3])
    with pytest.raises(RuntimeError, match="reset"):
        BernoulliBanditEnv().step(0)


# -- the batched environment ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_batched_and_single_env_agree_on_the_same_seeds(mode):
    """Instance i of the vector env seeded s plays the single env seeded s + i, autoresets
    included: compared with gymnasium's SyncVectorEnv over the single env, in the same mode."""
    n, k, horizon = 6, 4, 7
    ours = BernoulliBanditVectorEnv(n, k=k, horizon=horizon, autoreset_mode=mode)
    sync = SyncVectorEnv(
        [lambda: BernoulliBanditEnv(k=k, horizon=horizon) for _ in range(n)], autoreset_mode=mode
    )
    assert ours.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    o1, i1 = ours.reset(seed=11)
    o2, i2 = sync.reset(seed=11)
    np.testing.assert_array_equal(i1["means"].numpy(), i2["means"])
    rng = np.random.default_rng(0)
    truncations = 0
    for _ in range(3 * horizon + 2):
        a = rng.integers(k, size=n)
        o1, r1, te1, tr1, i1 = ours.step(torch.from_numpy(a))
        o2, r2, te2, tr2, i2 = sync.step(a)
        for key in ("pulls", "successes", "steps_left"):
            np.testing.assert_array_equal(o1[key].numpy(), o2[key])
        np.testing.assert_array_equal(r1.numpy(), r2)
        np.testing.assert_array_equal(te1.numpy(), te2)
        np.testing.assert_array_equal(tr1.numpy(), tr2)
        np.testing.assert_array_equal(i1["means"].numpy(), i2["means"])
        if mode == AutoresetMode.SAME_STEP and tr2.any():
            np.testing.assert_array_equal(i1["_final_obs"].numpy(), i2["_final_obs"])
            for j in np.flatnonzero(tr2):
                for key in ("pulls", "successes", "steps_left"):
                    np.testing.assert_array_equal(i1["final_obs"][key][j], i2["final_obs"][j][key])
                np.testing.assert_array_equal(
                    i1["final_info"]["means"][j].numpy(), i2["final_info"]["means"][j]
                )
        truncations += int(tr1.sum())
    assert truncations == 3 * n


def test_vector_env_autoreset_disabled():
    env = BernoulliBanditVectorEnv(3, k=2, horizon=2, autoreset_mode="Disabled")
    env.reset(seed=0)
    for _ in range(2):
        *_, truncated, _ = env.step(torch.zeros(3, dtype=torch.long))
    assert truncated.all()
    with pytest.raises(RuntimeError, match="instance 0 is truncated and autoreset is disabled"):
        env.step(torch.zeros(3, dtype=torch.long))
    obs, _ = env.reset(options={"reset_mask": np.array([True, True, True])})
    assert (obs["steps_left"] == 2).all()
    with pytest.raises(ValueError, match="autoreset_mode='x'"):
        BernoulliBanditVectorEnv(3, autoreset_mode="x")


def test_vector_env_seeds_and_types():
    env = BernoulliBanditVectorEnv(5, k=3, horizon=4)
    obs, info = env.reset(seed=[10, 20, 30, 40, 50])
    single = BernoulliBanditEnv(k=3, horizon=4)
    np.testing.assert_array_equal(info["means"][2].numpy(), single.reset(seed=30)[1]["means"])
    obs, r, te, tr, info = env.step(np.array([0, 1, 2, 0, 1]))
    assert obs["pulls"].dtype == torch.int64 and obs["pulls"].shape == (5, 3)
    assert obs["steps_left"].shape == (5,) and r.dtype == torch.float32 and r.shape == (5,)
    assert te.dtype == torch.bool and info["means"].dtype == torch.float64
    assert env.observation_space.shape is None and env.action_space.shape == (5,)
    # Returned tensors are never modified by later steps.
    before = obs["pulls"].clone()
    env.step(torch.zeros(5, dtype=torch.long))
    assert torch.equal(obs["pulls"], before)


def test_vector_env_partial_seeds_as_the_single_env():
    """A seed starts an instance's stream afresh; None plays its next episode."""
    env = BernoulliBanditVectorEnv(3, k=4, horizon=5)
    env.reset(seed=100)
    _, info = env.reset(seed=[7, None, 9])
    single = BernoulliBanditEnv(k=4, horizon=5)
    single.reset(seed=101)
    expected = [single.reset(seed=7)[1]["means"], None, single.reset(seed=9)[1]["means"]]
    single.reset(seed=101)
    expected[1] = single.reset()[1]["means"]
    np.testing.assert_array_equal(info["means"].numpy(), np.stack(expected))


def test_classic_policy_in_a_plain_gymnasium_loop():
    env = gym.make(ENV_ID, k=3, horizon=20)
    obs, info = env.reset(seed=0)
    policy, total, done = UCB1Policy(), 0.0, False
    while not done:
        obs, r, terminated, truncated, info = env.step(int(policy(batch_observation(obs))[0]))
        total, done = total + r, terminated or truncated
    assert obs["pulls"].sum() == 20 and obs["pulls"].min() >= 1 and total == obs["successes"].sum()


def test_vector_env_autoreset_next_step():
    env = BernoulliBanditVectorEnv(4, k=3, horizon=2)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    _, info = env.reset(seed=0)
    first_means = info["means"]
    env.step(torch.zeros(4, dtype=torch.long))
    obs, r, te, tr, _ = env.step(torch.zeros(4, dtype=torch.long))
    assert tr.all() and not te.any() and (obs["steps_left"] == 0).all()
    obs, r, te, tr, info = env.step(torch.full((4,), 2))  # ignored: this step resets
    assert (obs["pulls"] == 0).all() and (obs["steps_left"] == 2).all()
    assert (r == 0).all() and not tr.any() and not te.any()
    assert not torch.equal(info["means"], first_means)
    obs, *_ = env.step(torch.full((4,), 2))
    assert (obs["pulls"][:, 2] == 1).all()


def test_vector_env_reset_mask_and_fixed_means():
    env = BernoulliBanditVectorEnv(3, k=2, horizon=5)
    env.reset(seed=0, options={"means": torch.tensor([[0.0, 1.0]] * 3)})
    obs, r, *_ = env.step(torch.tensor([0, 1, 1]))
    assert r.tolist() == [0.0, 1.0, 1.0]
    mask = torch.tensor([True, False, True])
    obs, info = env.reset(options={"reset_mask": mask})
    assert obs["pulls"].sum(dim=1).tolist() == [0, 1, 0]
    assert torch.equal(info["means"][1], torch.tensor([0.0, 1.0], dtype=torch.float64))


# -- policies, play and the prior --------------------------------------------------------------
N, K = 100, 5
POLICY_RANGES = {  # mean total reward on 2000 U[0, 1] instances, n = 100, k = 5
    "random": (RandomPolicy(), 48.0, 52.0),  # n/2 exactly in expectation
    "greedy": (GreedyPolicy(), 71.0, 80.0),  # RL² table: 74.8
    "eps": (EpsilonGreedyPolicy(0.1), 70.0, 79.0),  # RL² (tuned): 75.4
    "ucb1": (UCB1Policy(), 62.0, 72.0),  # untuned c = 2 explores much at n = 100
    "thompson": (ThompsonPolicy(), 72.0, 78.0),  # RL² table: 74.7
}


@pytest.mark.parametrize("name", list(POLICY_RANGES))
def test_classic_policies_total_reward_in_known_ranges(name):
    policy, lo, hi = POLICY_RANGES[name]
    episodes, means = play_instances(policy, 2000, K, N, seed=1)
    stats = summarize(episodes, UNIFORM, means)
    assert lo < stats["reward"] < hi, stats
    assert stats["reward"] < N * K / (K + 1)  # the oracle's expectation
    assert stats["regret"] == pytest.approx(N * K / (K + 1) - stats["reward"])
    if name in ("ucb1", "thompson"):
        assert stats["regret"] < 0.6 * (N * K / (K + 1) - N / 2)  # random's expected regret
    # pseudo-regret: per pull, non-negative, and the instances' best minus the arms pulled
    per_pull = pseudo_regret(means, episodes.actions)
    assert (per_pull >= 0).all()
    chosen = means.gather(1, episodes.actions.T).sum(1)
    torch.testing.assert_close(per_pull.sum(0), N * means.max(1).values - chosen)
    assert stats["pseudo_regret"] == pytest.approx(float(per_pull.sum(0).mean()))


def test_gamma_sampler_of_thompson_sampling():
    alpha = torch.tensor([1.0, 2.0, 7.0, 40.0, 0.3], dtype=torch.float64).repeat(40000, 1)
    x = standard_gamma(alpha, torch.Generator().manual_seed(0))
    se = (alpha[0] / 40000) ** 0.5  # Gamma(a, 1): mean a, variance a
    assert ((x.mean(0) - alpha[0]).abs() < 4 * se).all()
    assert ((x.var(0) / alpha[0] - 1)[:4].abs() < 0.05).all()
    # below 1 the variance estimate spreads more: relative sd sqrt((6 / a + 2) / count)
    assert abs(float(x[:, 4].var()) / 0.3 - 1) < 4 * ((6 / 0.3 + 2) / 40000) ** 0.5
    y = standard_gamma(alpha[:5], torch.Generator().manual_seed(0))
    assert torch.equal(y, standard_gamma(alpha[:5], torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(("a", "b"), [(2.0, 5.0), (0.5, 0.5), (0.05, 3.0)])
def test_beta_sampler_of_posteriors(a, b):
    shape = (100_000,)
    gen = torch.Generator().manual_seed(1)
    full = (torch.full(shape, a, dtype=torch.float64), torch.full(shape, b, dtype=torch.float64))
    x = beta(*full, gen)
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert ((x >= 0) & (x <= 1)).all() and torch.isfinite(x).all()
    assert abs(float(x.mean()) - mean) < 4 * (var / shape[0]) ** 0.5
    assert float(x.var()) / var == pytest.approx(1.0, abs=0.05)
    assert torch.equal(x, beta(*full, torch.Generator().manual_seed(1)))


def test_the_prior_is_one_object_for_posteriors_thompson_and_the_oracle():
    prior = Prior(2.0, 5.0)
    pulls, successes = torch.tensor([[0, 4, 10]]), torch.tensor([[0, 1, 9]])
    a, b = prior.posterior(pulls, successes)
    assert a.tolist() == [[2.0, 3.0, 11.0]] and b.tolist() == [[5.0, 8.0, 6.0]]
    draws = ThompsonPolicy(prior).scores(
        {"pulls": pulls.expand(40000, 3), "successes": successes.expand(40000, 3)},
        torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(draws.mean(0), (a / (a + b))[0], atol=4e-3, rtol=0)
    greedy = GreedyPolicy(prior).scores({"pulls": pulls, "successes": successes})
    torch.testing.assert_close(greedy, a / (a + b))
    # E[max of k means]: k/(k+1) under U[0, 1]; under Beta(2, 5), against the env's own draws
    assert UNIFORM.expected_best(5) == 5 / 6 and prior.expected_best(1) == pytest.approx(2 / 7)
    env = BernoulliBanditVectorEnv(20000, k=3, horizon=1, prior=prior)
    best = env.reset(seed=0)[1]["means"].max(1).values
    assert abs(prior.expected_best(3) - float(best.mean())) < 4 * float(best.std()) / 20000**0.5
    with pytest.raises(ValueError, match=r"give a Prior or two Beta parameters"):
        Prior.of("uniform")


def test_play_shapes_and_reproducibility():
    a, means = play_instances(ThompsonPolicy(), 64, 3, 12, seed=5)
    b, _ = play_instances(ThompsonPolicy(), 64, 3, 12, seed=5)
    assert a.rewards.shape == a.actions.shape == a.steps_left.shape == (12, 64)
    assert a.pulls.shape == a.successes.shape == (12, 64, 3) and means.shape == (64, 3)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)
    # observations before each pull: counts so far, steps left falling from the horizon
    assert (a.pulls.sum(2) == torch.arange(12)[:, None]).all()
    assert (a.steps_left == 12 - torch.arange(12)[:, None]).all()
    assert (a.successes[-1].sum(1) + a.rewards[-1] == a.rewards.sum(0)).all()
    # instance i of a vector env seeded s is the single env seeded s + i
    single = BernoulliBanditEnv(k=3, horizon=12)
    np.testing.assert_array_equal(single.reset(seed=5 + 7)[1]["means"], means[7].numpy())


class _NoInfo(gym.vector.VectorWrapper):
    """Fails on any use of the info dicts the env returns."""

    class Guard(dict):
        def __getattribute__(self, name):
            raise AssertionError(f"info was read ({name})")

    def reset(self, **kwargs):
        obs, _ = self.env.reset(**kwargs)
        return obs, self.Guard()

    def step(self, actions):
        *out, _ = self.env.step(actions)
        return (*out, self.Guard())


def test_play_never_reads_info():
    env = _NoInfo(BernoulliBanditVectorEnv(8, k=3, horizon=5))
    episodes = play(UCB1Policy(), env, seed=0)
    assert episodes.rewards.shape == (5, 8)


def test_ties_are_broken_at_random_and_index_policies_are_equivariant():
    obs = {
        "pulls": torch.zeros(20000, 4, dtype=torch.long),
        "successes": torch.zeros(20000, 4, dtype=torch.long),
        "steps_left": torch.full((20000,), 10),
    }
    counts = torch.bincount(GreedyPolicy()(obs, torch.Generator().manual_seed(0)), minlength=4)
    assert (counts - 5000).abs().max() < 4 * (20000 * 0.25 * 0.75) ** 0.5
    g = torch.Generator().manual_seed(0)
    pulls = torch.randint(1, 6, (50, 6), generator=g)
    successes = (torch.rand(50, 6, generator=g) * (pulls + 1)).long().clamp(max=pulls)
    obs = {"pulls": pulls, "successes": successes, "steps_left": 60 - pulls.sum(1)}
    perm = torch.randperm(6, generator=g)
    obs_p = {
        "pulls": pulls[:, perm],
        "successes": successes[:, perm],
        "steps_left": obs["steps_left"],
    }
    for policy in (GreedyPolicy(), UCB1Policy()):
        torch.testing.assert_close(policy.scores(obs_p), policy.scores(obs)[:, perm])
    # The Bayes-optimal action values permute with the arms (both programs).
    s = torch.tensor([[0, 1, 0, 2], [1, 0, 0, 0], [0, 0, 0, 0]])
    f = torch.tensor([[1, 0, 0, 1], [0, 2, 1, 0], [0, 0, 0, 0]])
    perm = torch.tensor([2, 0, 3, 1])
    for dp in (DenseDP(4, 8), MultisetDP(4, 8)):
        q = dp.action_values(s, f)
        torch.testing.assert_close(dp.action_values(s[:, perm], f[:, perm]), q[:, perm])
        assert q[2].unique().numel() == 1  # all arms alike: all tied


# -- the Bayes-optimal dynamic program -----------------------------------------------------------
def brute_force_value(k: int, n: int, prior: Prior = UNIFORM) -> Fraction:
    """Max over actions of expected reward, over every history (no exchangeability, no memo)."""
    a0, b0 = Fraction(prior.alpha), Fraction(prior.beta)

    def value(arms: list[tuple[int, int]], left: int) -> Fraction:
        if left == 0:
            return Fraction(0)
        best = None
        for i, (s, f) in enumerate(arms):
            p = (s + a0) / (s + f + a0 + b0)  # posterior predictive of Beta(α + s, β + f)
            win = arms[:i] + [(s + 1, f)] + arms[i + 1 :]
            lose = arms[:i] + [(s, f + 1)] + arms[i + 1 :]
            q = p * (1 + value(win, left - 1)) + (1 - p) * value(lose, left - 1)
            best = q if best is None else max(best, q)
        return best

    return value([(0, 0)] * k, n)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_dp_matches_brute_force(k, n):
    exact = float(brute_force_value(k, n))
    assert DenseDP(k, n).value == pytest.approx(exact, abs=1e-12)
    assert MultisetDP(k, n).value == pytest.approx(exact, abs=1e-12)
    assert bayes_optimal_value(k, n) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize(("k", "n"), [(3, 9), (4, 7), (6, 5)])
def test_dense_and_multiset_programs_agree(k, n):
    dense, multiset = DenseDP(k, n), MultisetDP(k, n)
    assert dense.value == pytest.approx(multiset.value, abs=1e-10)
    # Action values of random states with pulls left (repeated states included).
    g = torch.Generator().manual_seed(k)
    arms = torch.randint(k, (200, n - 1), generator=g)
    wins = torch.rand(200, n - 1, generator=g) < 0.5
    pulls_made = torch.randint(n, (200, 1), generator=g) > torch.arange(n - 1)
    s = torch.zeros(200, k, dtype=torch.long).scatter_add(1, arms, (wins & pulls_made).long())
    f = torch.zeros(200, k, dtype=torch.long).scatter_add(1, arms, (~wins & pulls_made).long())
    torch.testing.assert_close(
        multiset.action_values(s, f), dense.action_values(s, f), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize(
    ("k", "n", "anchor"),
    [(5, 10, 6.660), (10, 10, 6.714), (50, 10, 6.714), (2, 10, 6.022), (2, 20, 12.431),
     (2, 50, 31.997), (2, 100, 64.918)],
)  # fmt: skip
def test_dp_reproduces_anchors(k, n, anchor):
    assert round(bayes_optimal_value(k, n), 3) == anchor


def test_dp_refuses_programs_too_large():
    with pytest.raises(ValueError, match="too large"):
        bayes_optimal_value(10, 100)
    with pytest.raises(ValueError, match="too large"):
        BayesOptimalPolicy(5, 500)


@pytest.mark.parametrize(("k", "b"), [(5, 20000), (10, 3000)])
def test_bayes_optimal_policy_reaches_its_value(k, b):
    n = 10
    policy = BayesOptimalPolicy(k, n)
    stats = summarize(play_instances(policy, b, k, n, seed=k)[0], UNIFORM)
    assert abs(stats["reward"] - bayes_optimal_value(k, n)) < 4 * stats["reward_se"], stats
    # ... and no classic policy does better on the same instances (beyond statistical error).
    for other in (GreedyPolicy(), UCB1Policy(), ThompsonPolicy()):
        o = summarize(play_instances(other, b, k, n, seed=k)[0], UNIFORM)
        assert o["reward"] < stats["reward"] + 3 * stats["reward_se"], (other, o)
    with pytest.raises(ValueError, match="horizon=10"):
        policy({"pulls": torch.zeros(2, k, dtype=torch.long),
                "successes": torch.zeros(2, k, dtype=torch.long),
                "steps_left": torch.full((2,), 9)})  # fmt: skip


def test_bayes_optimal_programme_under_a_beta_prior():
    prior = Prior(2.0, 5.0)
    for k, n in [(1, 3), (2, 3), (3, 2)]:
        exact = float(brute_force_value(k, n, prior))
        assert DenseDP(k, n, prior).value == pytest.approx(exact, abs=1e-12)
        assert MultisetDP(k, n, prior).value == pytest.approx(exact, abs=1e-12)
    policy = BayesOptimalPolicy(3, 6, prior)
    stats = summarize(play_instances(policy, 20000, 3, 6, seed=0, prior=prior)[0], prior)
    value = bayes_optimal_value(3, 6, prior)
    assert abs(stats["reward"] - value) < 4 * stats["reward_se"], (stats, value)
    assert value > 6 * 2 / 7  # better than pulling one arm blindly
