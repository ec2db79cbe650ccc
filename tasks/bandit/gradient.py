"""The policy-gradient estimate: advantages from a batch of episodes, and the REINFORCE loss.

Pure functions over rollout tensors, so the training step reads as rollout -> advantages -> loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["advantages", "reinforce_loss"]


def advantages(expected_rewards: Tensor, best_mean: Tensor, normalise: bool = True) -> Tensor:
    """Advantage of each action, ``(T, B)``, from the means of the arms the episodes pulled.

    ``expected_rewards[t, b]`` is the mean of the arm pulled at step ``t`` in episode ``b`` and
    ``best_mean[b]`` that episode's best mean. The return-to-go counts the *expected* reward of
    each pull rather than the 0/1 draw (the draw's noise averages to zero given the pull, so the
    gradient stays unbiased) and subtracts the best mean at every step, so the return is minus the
    pseudo-regret to go. The baseline is the mean return-to-go over the batch at the same step
    (all episodes of a batch share ``k`` and the horizon); ``normalise`` divides by the standard
    deviation over the whole batch.
    """
    regret_steps = expected_rewards - best_mean.unsqueeze(0)
    to_go = regret_steps.flip(0).cumsum(0).flip(0)
    adv = to_go - to_go.mean(1, keepdim=True)
    if normalise:
        adv = adv / adv.std().clamp(min=1e-8)
    return adv


def reinforce_loss(
    logits: Tensor, actions: Tensor, advantage: Tensor, entropy_coef: float
) -> tuple[Tensor, Tensor]:
    """REINFORCE with an entropy bonus: ``-(A · log π(a)) - c · H(π)``, averaged over the steps.

    ``logits`` ``(N, k)``, ``actions`` and ``advantage`` ``(N,)``. Returns ``(loss, entropy)``.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    chosen = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    loss = -(advantage.detach() * chosen).mean() - entropy_coef * entropy
    return loss, entropy
