"""The Bernoulli multi-armed bandit: gymnasium environments, classic policies, evaluation, and a
learned policy over arms (one network for any number of arms and any horizon).

Importing this package (or ``symlight.tasks``) registers ``symlight/BernoulliBandit-v0``:
``gymnasium.make("symlight/BernoulliBandit-v0", k=5, horizon=100)`` builds a
:class:`BernoulliBanditEnv`, ``gymnasium.make_vec(..., num_envs=N, device="cuda")`` a
:class:`BernoulliBanditVectorEnv`. ``load_policy(checkpoint)`` turns a trained
:class:`BanditPolicyGradient` checkpoint into ``policy(obs) -> action`` for a plain gymnasium loop.
"""

from gymnasium.envs.registration import register, registry

from .env import BernoulliBanditEnv, BernoulliBanditVectorEnv, observation_space
from .evaluate import batch_observation, pseudo_regret, regret, rollout, summarize
from .features import NUM_FEATURES, arm_features
from .load import load_policy
from .policies import (
    BayesOptimalPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    RandomPolicy,
    ThompsonPolicy,
    UCB1Policy,
    bayes_optimal_value,
)
from .task import BanditDataModule
from .training import BanditPolicyGradient, PolicyFunction

ENV_ID = "symlight/BernoulliBandit-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="symlight.tasks.bandit.env:BernoulliBanditEnv",
        vector_entry_point="symlight.tasks.bandit.env:BernoulliBanditVectorEnv",
    )

__all__ = [
    "ENV_ID",
    "NUM_FEATURES",
    "BanditDataModule",
    "BanditPolicyGradient",
    "BayesOptimalPolicy",
    "BernoulliBanditEnv",
    "BernoulliBanditVectorEnv",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "PolicyFunction",
    "RandomPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "arm_features",
    "batch_observation",
    "bayes_optimal_value",
    "load_policy",
    "observation_space",
    "pseudo_regret",
    "regret",
    "rollout",
    "summarize",
]
