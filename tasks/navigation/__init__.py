"""Cooperative navigation (MPE's ``simple_spread``): a batched torch environment and one policy
for every agent of a team of any size, equivariant to relabelling the agents and the landmarks,
trained by PPO with a centralised value on the rewards the environment returns.

:class:`NavigationEnv` steps thousands of instances at once with mpe2's physics, observations and
rewards; :class:`NavigationDataModule` declares the team sizes to train and evaluate on;
:class:`NavigationPPO` trains a network of :mod:`.networks` (:class:`CentralisedPolicy`,
:class:`DecentralisedPolicy`, and the baselines :class:`MLPPolicy` and :class:`NearestKPolicy`)
on it. Importing this package (or ``symlight.tasks``) makes the task known to the command line:
``python -m symlight fit --config navigation.yaml``.
"""

from .env import (
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
from .networks import (
    CentralisedPolicy,
    DecentralisedPolicy,
    MLPPolicy,
    NavigationNetwork,
    NearestKPolicy,
    SetFeatures,
    features,
)
from .task import NavigationDataModule
from .training import NavigationPPO

__all__ = [
    "ACTIONS",
    "CentralisedPolicy",
    "DecentralisedPolicy",
    "MLPPolicy",
    "NavState",
    "NavigationDataModule",
    "NavigationEnv",
    "NavigationNetwork",
    "NavigationPPO",
    "NearestKPolicy",
    "SetFeatures",
    "collisions",
    "coverage",
    "default_arena",
    "default_max_steps",
    "features",
    "global_reward",
    "observations",
]
