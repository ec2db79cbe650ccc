"""``load_policy``: a trained bandit policy as a plain function of one observation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..base import policy_checkpoint
from .policies import PolicyFunction
from .prior import Prior
from .training import CHECKPOINT_KEY, BanditPolicyGradient

__all__ = ["load_checkpoint_module", "load_policy"]


def load_checkpoint_module(
    checkpoint_path: str | Path, device: str | torch.device = "cpu"
) -> tuple[BanditPolicyGradient, Prior]:
    """The :class:`BanditPolicyGradient` of a checkpoint (in eval mode) and its prior.

    Raises a ValueError naming the checkpoint when it is not a bandit policy. The checkpoint is
    unpickled in full (it records how to rebuild its network): load only files you trust.
    """
    path = Path(checkpoint_path)
    checkpoint = policy_checkpoint(
        path, CHECKPOINT_KEY, "bandit policy", "BanditPolicyGradient", "bandit.yaml"
    )
    module = BanditPolicyGradient.load_from_checkpoint(
        path, map_location=device, weights_only=False
    )
    module.eval()
    return module, Prior.of(checkpoint[CHECKPOINT_KEY].get("prior", (1.0, 1.0)))


def load_policy(
    checkpoint_path: str | Path, greedy: bool = True, device: str | torch.device = "cpu"
) -> Callable[[Mapping[str, Any]], int]:
    """Load a :class:`BanditPolicyGradient` checkpoint as ``policy(obs) -> action``.

    ``obs`` is one observation of ``symlight/BernoulliBandit-v0`` (``pulls`` and ``successes``
    of shape ``(k,)``, ``steps_left`` a scalar; NumPy arrays or tensors), at any number of arms
    and any horizon; the action is an ``int`` in ``0..k-1``:

        policy = load_policy("lightning_logs/bandit/version_0/checkpoints/last.ckpt")
        env = gymnasium.make("symlight/BernoulliBandit-v0", k=20, horizon=300)
        obs, info = env.reset(seed=0)
        while True:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            if terminated or truncated:
                break

    ``greedy`` plays the arm with the largest logit; otherwise arms are sampled from the policy.
    Raises a ValueError for a checkpoint that is not a bandit policy.
    """
    module, prior = load_checkpoint_module(checkpoint_path, device)
    batched = PolicyFunction(module.net, prior, greedy)
    generator = torch.Generator(device=device).manual_seed(0)

    def policy(obs: Mapping[str, Any]) -> int:
        single = {
            key: torch.as_tensor(obs[key], device=device).unsqueeze(0)
            for key in ("pulls", "successes", "steps_left")
        }
        return int(batched(single, generator)[0])

    return policy
