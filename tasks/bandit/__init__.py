"""The Bernoulli multi-armed bandit: gymnasium environments, classic policies, evaluation.

Importing this package (or ``symlight.tasks``) registers ``symlight/BernoulliBandit-v0``:
``gymnasium.make("symlight/BernoulliBandit-v0", k=5, horizon=100)`` builds a
:class:`BernoulliBanditEnv`, ``gymnasium.make_vec(..., num_envs=N, device="cuda")`` a
:class:`BernoulliBanditVectorEnv`.
"""

from gymnasium.envs.registration import register, registry

from .env import BernoulliBanditEnv, BernoulliBanditVectorEnv, observation_space
from .evaluate import batch_observation, pseudo_regret, regret, rollout, summarize
from .policies import (
    BayesOptimalPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    RandomPolicy,
    ThompsonPolicy,
    UCB1Policy,
    bayes_optimal_value,
)

ENV_ID = "symlight/BernoulliBandit-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="symlight.tasks.bandit.env:BernoulliBanditEnv",
        vector_entry_point="symlight.tasks.bandit.env:BernoulliBanditVectorEnv",
    )

__all__ = [
    "ENV_ID",
    "BayesOptimalPolicy",
    "BernoulliBanditEnv",
    "BernoulliBanditVectorEnv",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "RandomPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "batch_observation",
    "bayes_optimal_value",
    "observation_space",
    "pseudo_regret",
    "regret",
    "rollout",
    "summarize",
]
