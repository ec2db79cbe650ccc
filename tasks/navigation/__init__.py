"""Cooperative navigation (MPE's ``simple_spread``): a batched torch environment and one policy
for every agent of a team of any size, equivariant to relabelling the agents and the landmarks,
trained by PPO with a centralised value on the rewards the environment returns.

:class:`NavigationEnv` steps thousands of instances at once with mpe2's physics, observations and
rewards; :class:`NavigationDataModule` declares the team sizes to train and evaluate on;
:class:`NavigationPPO` trains a network of :mod:`.networks` (:class:`CentralisedPolicy`,
:class:`DecentralisedPolicy`, and the baselines :class:`MLPPolicy` and :class:`NearestKPolicy`)
on it. :func:`play` measures any batched policy on fixed instances, beside :func:`baselines`.
Importing this package (or ``symlight.tasks``) makes the task known to the command line:
``python -m symlight fit --config navigation.yaml``.

The PettingZoo side (:class:`SpreadParallelEnv`, :func:`state_from_observations` and
``load_policy(checkpoint)``, a trained policy for mpe2's ``simple_spread_v3``) needs
``pettingzoo`` (``pip install symlight[navigation]``) and is imported when first used.
"""

import importlib

from .baselines import assignment_oracle, baselines, nearest_landmark, random_policy
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
from .evaluation import play, summary
from .figures import trajectory_figure
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

_PETTINGZOO = {
    "SpreadParallelEnv": ".parallel",
    "state_from_observations": ".parallel",
    "ObservationPolicy": ".load",
    "load_policy": ".load",
}


def __getattr__(name: str):
    if name in _PETTINGZOO:
        return getattr(importlib.import_module(_PETTINGZOO[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "ObservationPolicy",
    "SetFeatures",
    "SpreadParallelEnv",
    "assignment_oracle",
    "baselines",
    "collisions",
    "coverage",
    "default_arena",
    "default_max_steps",
    "features",
    "global_reward",
    "load_policy",
    "nearest_landmark",
    "observations",
    "play",
    "random_policy",
    "state_from_observations",
    "summary",
    "trajectory_figure",
]
