"""The multi-armed bandit task: environments, classic policies and a learned equivariant policy."""

from .features import NUM_FEATURES, arm_features
from .load import load_policy
from .task import BanditDataModule
from .training import BanditPolicyGradient, PolicyFunction

__all__ = [
    "NUM_FEATURES",
    "BanditDataModule",
    "BanditPolicyGradient",
    "PolicyFunction",
    "arm_features",
    "load_policy",
]
