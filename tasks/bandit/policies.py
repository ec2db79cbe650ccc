"""Bandit policies, batched over instances, on the environment's observation: the classic ones,
the exact Bayes-optimal one, and a network over the arms' features.

Every policy is a callable ``policy(obs, generator=None) -> (B,) int64`` where ``obs`` holds
``pulls`` and ``successes`` (B, k) int64 and ``steps_left`` (B,) int64, as
:class:`~symlight.tasks.bandit.BernoulliBanditVectorEnv` returns them and
:func:`~symlight.tasks.bandit.play` passes them. Random numbers (exploration, tie-breaking,
posterior samples) come from ``generator`` when one is given (on the observation's device). The
policies that use posteriors take the task's :class:`~symlight.tasks.bandit.prior.Prior`.

Symmetry: all of them are equivariant over arms in distribution. The index policies score each
arm from its own statistics (and the time step) and pull the best score, breaking ties uniformly
at random; the Bayes-optimal policy's action values are functions of exchangeable arm states; the
network sees each arm's features, never its index.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .dp import BayesOptimalDP, bayes_optimal_value, dynamic_program
from .features import arm_features
from .prior import UNIFORM, Prior

__all__ = [
    "BayesOptimalPolicy",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "IndexPolicy",
    "PolicyFunction",
    "RandomPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "argmax_random_ties",
    "bayes_optimal_value",
    "classic_policies",
    "sampling_logits",
]

Obs = Mapping[str, Tensor]


def argmax_random_ties(
    scores: Tensor, generator: torch.Generator | None = None, atol: float = 0.0
) -> Tensor:
    """Index of the largest of ``scores`` (B, k) per row, ties broken uniformly at random.

    Entries within ``atol`` of a row's largest are tied. Returns (B,) int64.
    """
    best = scores.max(dim=1, keepdim=True).values
    tied = scores >= best - atol
    noise = torch.rand(scores.shape, generator=generator, device=scores.device)
    return torch.where(tied, noise, -1.0).argmax(dim=1)


def _counts(obs: Obs) -> tuple[Tensor, Tensor]:
    pulls, successes = obs["pulls"], obs["successes"]
    if pulls.dim() != 2 or pulls.shape != successes.shape:
        raise ValueError(
            "a policy takes batched observations: pulls and successes of shape (B, k), got "
            f"{tuple(pulls.shape)} and {tuple(successes.shape)}"
        )
    return pulls, successes


class RandomPolicy:
    """Pulls an arm uniformly at random. Symmetry: invariant in distribution over arms."""

    def __call__(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        pulls, _ = _counts(obs)
        b, k = pulls.shape
        return torch.randint(k, (b,), generator=generator, device=pulls.device)

    def __repr__(self) -> str:
        return "RandomPolicy()"


class IndexPolicy(ABC):
    """Scores each arm from its own statistics and pulls the best score, ties at random.

    Symmetry: permuting the arms permutes the scores, so the policy is equivariant over arms.
    """

    @abstractmethod
    def scores(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        """(B, k) scores, float."""

    def __call__(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        return argmax_random_ties(self.scores(obs, generator), generator)


class GreedyPolicy(IndexPolicy):
    """Pulls the arm with the highest posterior mean ``(s + α) / (n + α + β)``.

    Under the uniform prior this is ``(s + 1) / (n + 2)``, the empirical mean with one
    pseudo-success and one pseudo-failure: an untried arm scores 1/2, so the policy keeps an arm
    while it looks better than a fresh one.
    Symmetry: equivariant over arms (an index policy).
    """

    def __init__(self, prior: Prior = UNIFORM) -> None:
        self.prior = prior

    def scores(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        a, b = self.prior.posterior(*_counts(obs))
        return a / (a + b)

    def __repr__(self) -> str:
        return "GreedyPolicy()" if self.prior.uniform else f"GreedyPolicy({self.prior!r})"


class EpsilonGreedyPolicy(GreedyPolicy):
    """With probability ``epsilon`` a uniformly random arm, otherwise :class:`GreedyPolicy`.

    Symmetry: equivariant over arms in distribution.
    """

    def __init__(self, epsilon: float = 0.1, prior: Prior = UNIFORM) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon}: must lie in [0, 1]")
        super().__init__(prior)
        self.epsilon = epsilon

    def __call__(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        greedy = super().__call__(obs, generator)
        b, k = obs["pulls"].shape
        device = greedy.device
        explore = torch.rand(b, generator=generator, device=device) < self.epsilon
        random = torch.randint(k, (b,), generator=generator, device=device)
        return torch.where(explore, random, greedy)

    def __repr__(self) -> str:
        return f"EpsilonGreedyPolicy(epsilon={self.epsilon})"


class UCB1Policy(IndexPolicy):
    """UCB1 (Auer et al. 2002): pull each arm once, then the largest ``mean + sqrt(c ln t / n)``.

    ``t`` is the number of pulls so far and ``c = 2`` the classic constant.
    Symmetry: equivariant over arms (an index policy).
    """

    def __init__(self, c: float = 2.0) -> None:
        if c < 0:
            raise ValueError(f"c={c}: must be >= 0")
        self.c = c

    def scores(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        pulls, successes = _counts(obs)
        n = pulls.double()
        t = n.sum(dim=1, keepdim=True).clamp(min=1.0)
        safe = n.clamp(min=1.0)
        ucb = successes / safe + torch.sqrt(self.c * torch.log(t) / safe)
        return torch.where(pulls > 0, ucb, math.inf)

    def __repr__(self) -> str:
        return f"UCB1Policy(c={self.c})"


class ThompsonPolicy(IndexPolicy):
    """Thompson sampling: pull the arm with the largest draw from its Beta(α + s, β + f) posterior.

    Symmetry: equivariant over arms in distribution (an index policy on random scores).
    """

    def __init__(self, prior: Prior = UNIFORM) -> None:
        self.prior = prior

    def scores(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample_posterior(*_counts(obs), generator)

    def __repr__(self) -> str:
        return "ThompsonPolicy()" if self.prior.uniform else f"ThompsonPolicy({self.prior!r})"


class BayesOptimalPolicy:
    """The Bayes-optimal policy for ``k`` arms with means drawn from ``prior`` and ``horizon`` pulls.

    It pulls an arm of largest action value, computed exactly by dynamic programming over Beta
    posteriors (:mod:`symlight.tasks.bandit.dp`); tied arms are chosen uniformly at random. Its
    expected total reward is :func:`bayes_optimal_value` ``(k, horizon, prior)``, the best any
    policy can do in expectation. Raises ``ValueError`` where the program is too large (see
    :func:`~symlight.tasks.bandit.dp.dynamic_program`).

    Symmetry: equivariant over arms in distribution (the action values of arms with equal
    statistics are equal, and ties are broken at random).
    """

    def __init__(self, k: int, horizon: int, prior: Prior = UNIFORM) -> None:
        self.k, self.horizon = k, horizon
        self.dp: BayesOptimalDP = dynamic_program(k, horizon, prior=prior)

    def __call__(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        pulls, successes = _counts(obs)
        if pulls.shape[1] != self.k:
            raise ValueError(
                f"this policy is for k={self.k} arms; the observation has {pulls.shape[1]}"
            )
        total = pulls.sum(dim=1) + obs["steps_left"]
        if bool((total != self.horizon).any()):
            raise ValueError(
                f"this policy is for horizon={self.horizon}; the observation's pulls + steps_left "
                f"is {int(total[(total != self.horizon).nonzero()[0, 0]])}"
            )
        q = self.dp.action_values(successes, pulls - successes)
        return argmax_random_ties(q, generator, atol=1e-9 * max(1.0, self.horizon))

    def __repr__(self) -> str:
        return f"BayesOptimalPolicy(k={self.k}, horizon={self.horizon})"


class PolicyFunction:
    """A network over the arms' features (:mod:`.features`) as a batched policy.

    ``policy(obs, generator) -> (B,) actions``. Greedy takes the arm with the largest logit (the
    lowest index among ties); otherwise an arm is drawn with ``generator`` from the softmax of
    :func:`sampling_logits`, in which the untouched arms are one choice, "a fresh arm", whatever
    their number. Symmetry: equivariant over arms (S_k) when ``net`` is.
    """

    def __init__(self, net: nn.Module, prior: Prior = UNIFORM, greedy: bool = True) -> None:
        self.net, self.prior, self.greedy = net, prior, greedy

    def logits(self, obs: Obs) -> Tensor:
        dtype = next(self.net.parameters()).dtype
        x = arm_features(obs["pulls"], obs["successes"], obs["steps_left"], self.prior, dtype)
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def __call__(self, obs: Obs, generator: torch.Generator | None = None) -> Tensor:
        logits = self.logits(obs)
        if self.greedy:
            return logits.argmax(-1)
        probs = torch.softmax(sampling_logits(logits, obs["pulls"]).float(), -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sampling_logits(logits: Tensor, pulls: Tensor) -> Tensor:
    """The logits (..., k) a policy samples from: the network's, minus ``log m`` on each of the
    ``m`` arms not yet pulled (``pulls`` (..., k)).

    Untouched arms look alike, so the network gives them one logit ``l``; sampled from the plain
    softmax, "some untouched arm" would get ``m·e^l``, a share that grows with the number of arms
    while the greedy policy (which compares ``l`` with the pulled arms' logits) stays the same.
    Here the untouched arms share ``e^l`` as one choice, so the sampled policy that training
    improves explores as the greedy one it is played as. Equivariant: ``m`` is the same for every
    ordering of the arms.
    """
    untouched = pulls == 0
    m = untouched.sum(-1, keepdim=True).clamp(min=1).to(logits.dtype)
    return logits - untouched.to(logits.dtype) * m.log()


def classic_policies(prior: Prior = UNIFORM) -> dict[str, IndexPolicy | RandomPolicy]:
    """The classic baselines played beside a learned policy, by metric suffix."""
    return {
        "random": RandomPolicy(),
        "greedy": GreedyPolicy(prior),
        "epsilon_greedy": EpsilonGreedyPolicy(0.1, prior),
        "ucb1": UCB1Policy(),
        "thompson": ThompsonPolicy(prior),
    }
