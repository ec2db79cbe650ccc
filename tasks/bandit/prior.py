"""The prior of the arm means, Beta(α, β) (uniform when α = β = 1): one object for the whole task.

The environment draws each episode's arm means from it (:meth:`Prior.thresholds`), the policy's
features and the classic policies read the arms' posteriors from it (:meth:`Prior.posterior`,
:meth:`Prior.sample_posterior`), the Bayes-optimal programme predicts the next reward with it, and
the regret's oracle, ``n·E[max p]``, is :meth:`Prior.expected_best`.

Posterior draws (Thompson sampling) come from :func:`beta`, which draws every random number from
the ``torch.Generator`` it is given (torch's own Beta sampler takes none):

>>> gen = torch.Generator().manual_seed(0)
>>> x = beta(torch.full((20000,), 2.0), torch.full((20000,), 5.0), gen)
>>> bool(0.0 < x.min() and x.max() < 1.0), abs(float(x.mean()) - 2 / 7) < 0.01  # mean a / (a + b)
(True, True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["UNIFORM", "Prior", "beta", "standard_gamma"]

_SCALE = 2.0**32


@dataclass(frozen=True)
class Prior:
    """Beta(``alpha``, ``beta``) prior of every arm's mean; ``Prior()`` is U[0, 1] (RL²'s).

    >>> Prior(2, 5), Prior.of((1, 1)) == UNIFORM
    (Prior(alpha=2.0, beta=5.0), True)
    >>> round(Prior().expected_best(5), 4), round(Prior(2, 5).expected_best(1), 4)  # k/(k+1); α/(α+β)
    (0.8333, 0.2857)
    """

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"prior {name}={value!r}: a Beta parameter must be a number")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"prior {name}={value!r}: a Beta parameter must be > 0")
            object.__setattr__(self, name, float(value))

    @classmethod
    def of(cls, value: Prior | Sequence[float]) -> Prior:
        """A prior from a :class:`Prior` or a pair ``(α, β)`` (as configs and env kwargs give it)."""
        if isinstance(value, Prior):
            return value
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"prior={value!r}: give a Prior or two Beta parameters (α, β)")
        return cls(*value)

    @property
    def uniform(self) -> bool:
        return self.alpha == 1.0 and self.beta == 1.0

    def __str__(self) -> str:
        return "U[0, 1]" if self.uniform else f"Beta({self.alpha:g}, {self.beta:g})"

    # -- the environment's draws --------------------------------------------------------------
    def thresholds(self, u: np.ndarray) -> np.ndarray:
        """Success thresholds (int64 in ``[0, 2**32]``, mean = threshold / 2**32) from uniform
        32-bit integers ``u``: ``u`` itself for U[0, 1], else the inverse Beta CDF of
        ``(u + 0.5) / 2**32`` (SciPy, on the CPU in float64), so every device draws the same.
        """
        u = np.asarray(u, dtype=np.int64)
        if self.uniform:
            return u.copy()
        from scipy.special import betaincinv

        means = betaincinv(self.alpha, self.beta, (u.astype(np.float64) + 0.5) / _SCALE)
        return np.clip(np.rint(means * _SCALE), 0, _SCALE).astype(np.int64)

    # -- posteriors ---------------------------------------------------------------------------
    def posterior(
        self, pulls: Tensor, successes: Tensor, dtype=torch.float64
    ) -> tuple[Tensor, Tensor]:
        """The Beta posterior ``(α + successes, β + failures)`` of each arm, in ``dtype``."""
        successes = successes.to(dtype)
        return successes + self.alpha, pulls.to(dtype) - successes + self.beta

    def sample_posterior(
        self, pulls: Tensor, successes: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """One draw of each arm's mean from its posterior (float64), from ``generator``."""
        return beta(*self.posterior(pulls, successes), generator)

    # -- the oracle ---------------------------------------------------------------------------
    @functools.cache  # noqa: B019  (a frozen, hashable value: the cache is keyed by it)
    def expected_best(self, k: int) -> float:
        """``E[max of k arm means]``: ``k/(k+1)`` for U[0, 1], else ``∫ 1 − F(x)^k dx`` with ``F``
        the Beta CDF (numerical quadrature, accurate to about 1e-10).
        """
        if k < 1:
            raise ValueError(f"k={k}: the number of arms must be >= 1")
        if self.uniform:
            return k / (k + 1)
        from scipy.integrate import quad
        from scipy.special import betainc

        value, _ = quad(lambda x: 1.0 - betainc(self.alpha, self.beta, x) ** k, 0.0, 1.0, limit=200)
        return float(value)


UNIFORM = Prior()
"""U[0, 1], the prior of the RL² table."""


# -- Beta draws from a generator ----------------------------------------------------------------
def standard_gamma(alpha: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Gamma(alpha, 1) samples, one per entry of ``alpha`` (``> 0``), drawn from ``generator``.

    Marsaglia and Tsang (2000) for ``alpha >= 1``; below 1, ``Gamma(alpha + 1) * U^(1/alpha)``.
    """
    return torch.exp(_log_gamma(alpha, generator))


def beta(a: Tensor, b: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Beta(a, b) samples (``a``, ``b`` > 0, same shape), as ``X / (X + Y)`` with Gamma draws
    ``X ~ Gamma(a)``, ``Y ~ Gamma(b)``, computed from their logarithms so that tiny draws never
    give 0 / 0.
    """
    return torch.sigmoid(_log_gamma(a, generator) - _log_gamma(b, generator))


def _log_gamma(alpha: Tensor, generator: torch.Generator | None) -> Tensor:
    """``log`` of Gamma(alpha, 1) samples, for every ``alpha > 0``."""
    boost = alpha < 1
    log_x = torch.log(_marsaglia_tsang(torch.where(boost, alpha + 1.0, alpha), generator))
    if bool(boost.any()):
        u = torch.rand(alpha.shape, generator=generator, device=alpha.device, dtype=alpha.dtype)
        tiny = torch.finfo(alpha.dtype).tiny
        log_x = torch.where(boost, log_x + torch.log(u.clamp(min=tiny)) / alpha, log_x)
    return log_x


def _marsaglia_tsang(alpha: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gamma(alpha, 1) samples for ``alpha >= 1`` by Marsaglia and Tsang's squeeze method."""
    flat = alpha.reshape(-1)
    d = flat - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(flat)
    todo = torch.arange(flat.numel(), device=flat.device)
    while todo.numel() > 0:  # about 2-5% rejected per round: later rounds are small
        dd, cc = d[todo], c[todo]
        x = torch.randn(todo.shape, generator=generator, device=flat.device, dtype=flat.dtype)
        u = torch.rand(todo.shape, generator=generator, device=flat.device, dtype=flat.dtype)
        v = (1.0 + cc * x) ** 3
        log_v = torch.log(v.clamp(min=torch.finfo(v.dtype).tiny))
        accept = (v > 0) & (torch.log(u) < 0.5 * x * x + dd - dd * v + dd * log_v)
        out[todo[accept]] = (dd * v)[accept]
        todo = todo[~accept]
    return out.reshape(alpha.shape)
