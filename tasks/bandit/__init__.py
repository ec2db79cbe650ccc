"""The Bernoulli multi-armed bandit: gymnasium environments, one prior, classic policies, and a
learned policy over arms (one network for any number of arms and any horizon), trained on the
rewards the environment returns.

Importing this package (or ``symlight.tasks``) registers ``symlight/BernoulliBandit-v0``:
``gymnasium.make("symlight/BernoulliBandit-v0", k=5, horizon=100)`` builds a
:class:`BernoulliBanditEnv`, ``gymnasium.make_vec(..., num_envs=N, device="cuda")`` a
:class:`BernoulliBanditVectorEnv`. :func:`play` plays a batched policy on a vector env (training,
evaluation and benchmarks all play through it). ``load_policy(checkpoint)`` turns a trained
:class:`BanditPolicyGradient` checkpoint into ``policy(obs) -> action`` for a plain gymnasium loop.
"""

from gymnasium.envs.registration import register, registry

from .env import ENV_ID, BernoulliBanditEnv, BernoulliBanditVectorEnv, observation_space
from .features import NUM_FEATURES, arm_features
from .load import load_policy
from .play import Episodes, batch_observation, make_env, play, summarize
from .policies import (
    BayesOptimalPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PolicyFunction,
    RandomPolicy,
    ThompsonPolicy,
    UCB1Policy,
    bayes_optimal_value,
    classic_policies,
    sampling_logits,
)
from .prior import UNIFORM, Prior
from .task import BanditDataModule
from .training import BanditPolicyGradient

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="symlight.tasks.bandit.env:BernoulliBanditEnv",
        vector_entry_point="symlight.tasks.bandit.env:BernoulliBanditVectorEnv",
    )

__all__ = [
    "ENV_ID",
    "NUM_FEATURES",
    "UNIFORM",
    "BanditDataModule",
    "BanditPolicyGradient",
    "BayesOptimalPolicy",
    "BernoulliBanditEnv",
    "BernoulliBanditVectorEnv",
    "EpsilonGreedyPolicy",
    "Episodes",
    "GreedyPolicy",
    "PolicyFunction",
    "Prior",
    "RandomPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "arm_features",
    "batch_observation",
    "bayes_optimal_value",
    "classic_policies",
    "load_policy",
    "make_env",
    "observation_space",
    "play",
    "sampling_logits",
    "summarize",
]
