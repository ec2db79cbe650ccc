"""Cooperative navigation (MPE's ``simple_spread``), batched in torch.

``N`` agents and ``M`` landmarks on a plane; the team is rewarded by minus the sum over landmarks
of the distance to the nearest agent, and each agent is penalised for each other agent it
overlaps. :class:`NavigationEnv` steps ``num_envs`` instances at once with tensor operations on
one device, with the physics, observations and rewards of ``mpe2.simple_spread_v3`` (MIT,
Farama Foundation): at ``N = 3`` with the default options it plays, from the same initial state
and with the same actions, step for step the same episodes (same observations and rewards up to
float rounding; ``tests/test_navigation_env.py`` checks it against ``mpe2`` itself).

Physics (mpe2's ``World.step``, time step ``dt = 0.1``): agents are discs of radius 0.15 and
mass 1; landmarks are points that neither move nor collide. Action ``a`` in 0..4 (no-op, -x, +x,
-y, +y) is a force of 5 along its axis. Every pair of agents pushes apart with the contact force
``100 * k * softplus(-(d - 0.3) / k)`` (``k = 1e-3``, ``d`` their distance) along the line between
them. Then ``pos += vel * dt``, ``vel = 0.75 * vel + force * dt``: velocity damping 0.25, and the
position moves with the velocity of the previous step. A constant push reaches the terminal
speed ``5 * dt / 0.25 = 2``, that is 0.2 per step.

Rewards are computed after the step: agent ``i`` gets
``(1 - local_ratio) * global_reward + local_ratio * (-collisions_i)``, where ``collisions_i``
counts the other agents closer than 0.3 (the discs overlap).

Scaling with ``N`` (both options of :class:`NavigationEnv`, both equal to mpe2 at ``N = 3``):

- the arena's half-width defaults to ``sqrt(N / 3)`` (:func:`default_arena`): agents and
  landmarks start uniformly in ``[-arena, arena]^2``, whose area grows as ``N``, so the density
  of landmarks (and of agents) stays that of mpe2's ``N = 3`` on ``[-1, 1]^2`` at every ``N``;
- the episode lasts ``ceil(25 * arena)`` steps (:func:`default_max_steps`): at the terminal
  speed of 0.2 per step, mpe2's 25 steps cross its arena (width 2) 2.5 times; scaling the length
  with the arena keeps that number of crossings, so an agent can still reach a landmark on the
  far side of a larger arena.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ACTIONS",
    "AGENT_SIZE",
    "NavState",
    "NavigationEnv",
    "collisions",
    "coverage",
    "default_arena",
    "default_max_steps",
    "global_reward",
    "observations",
]

ACTIONS = 5
"""mpe2's discrete actions: 0 no-op, 1 left (-x), 2 right (+x), 3 down (-y), 4 up (+y)."""

AGENT_SIZE = 0.15  # an agent's radius; two agents collide below 2 * AGENT_SIZE
DT = 0.1
DAMPING = 0.25
MASS = 1.0
SENSITIVITY = 5.0  # the force of a discrete action
CONTACT_FORCE = 100.0
CONTACT_MARGIN = 1e-3
COMM_DIM = 2  # mpe2's silent agents still show 2 zeros of communication per other agent
_MOVES = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))


@dataclass(frozen=True)
class NavState:
    """The state of ``E`` synchronous episodes of cooperative navigation.

    Symmetry: permuting the agents (the same permutation of ``agent_pos`` and ``agent_vel``)
    permutes every per-agent quantity alike; permuting the landmarks changes no reward.

    ``agent_pos`` (E, N, 2), ``agent_vel`` (E, N, 2), ``landmark_pos`` (E, M, 2); ``step`` is the
    number of steps taken so far (the same in all ``E`` episodes).
    """

    agent_pos: Tensor
    agent_vel: Tensor
    landmark_pos: Tensor
    step: int = 0


def default_arena(agents: int) -> float:
    """The arena's half-width for ``agents`` agents: ``sqrt(agents / 3)`` (1 at 3, as mpe2).

    The arena's area grows as the number of agents (and landmarks): constant density.

    >>> default_arena(3), default_arena(12)
    (1.0, 2.0)
    """
    return math.sqrt(agents / 3)


def default_max_steps(agents: int) -> int:
    """The episode length for ``agents`` agents: ``ceil(25 * default_arena(agents))``.

    25 at 3 agents, as mpe2; proportional to the arena's width, so an episode crosses the arena
    as many times at the terminal speed (0.2 per step) at every size.

    >>> default_max_steps(3), default_max_steps(20)
    (25, 65)
    """
    return math.ceil(25 * default_arena(agents))


def _pairs(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``dx, dy, dist`` (E, A, B): ``(dx, dy)[e, i, j] = a[e, i] - b[e, j]`` and its length.

    The coordinates are kept apart (no trailing axis of 2) so that the (E, A, B) operations run
    over contiguous memory; the length is mpe2's ``sqrt(sum(square(delta)))``.
    """
    ax, ay = a.unbind(-1)
    bx, by = b.unbind(-1)
    dx = ax[:, :, None] - bx[:, None, :]
    dy = ay[:, :, None] - by[:, None, :]
    # In place where possible: on the CPU, allocating the large (E, A, B) tensors costs more
    # than computing them.
    return dx, dy, (dx * dx).addcmul_(dy, dy).sqrt_()


def _others(n: int, device: torch.device) -> Tensor:
    """``others[i]``: the agents other than ``i``, in increasing order: (n, n - 1)."""
    idx = torch.arange(n, device=device)
    return idx.expand(n, n)[idx[:, None] != idx].reshape(n, n - 1)


def observations(state: NavState) -> Tensor:
    """Each agent's observation in mpe2's layout: (E, N, 4 + 2M + 4(N - 1)).

    Agent ``i`` sees ``[vel_i, pos_i, landmark_m - pos_i for each m, pos_j - pos_i for each
    j != i in increasing order, 2 zeros per other agent]`` (the zeros are mpe2's communication
    channel, silent in ``simple_spread``).
    """
    pos, vel, marks = state.agent_pos, state.agent_vel, state.landmark_pos
    e, n, _ = pos.shape
    m = marks.shape[1]
    out = pos.new_zeros(e, n, 4 + 2 * m + (2 + COMM_DIM) * (n - 1))
    out[..., 0:2] = vel
    out[..., 2:4] = pos
    to_marks = out[..., 4 : 4 + 2 * m].unflatten(-1, (m, 2))
    to_marks.copy_(marks[:, None, :, :] - pos[:, :, None, :])
    to_others = out[..., 4 + 2 * m : 4 + 2 * m + 2 * (n - 1)].unflatten(-1, (n - 1, 2))
    to_others.copy_(pos[:, _others(n, pos.device)] - pos[:, :, None, :])
    return out


def global_reward(state: NavState) -> Tensor:
    """Minus the sum over landmarks of the distance to the nearest agent: (E,)."""
    return -_pairs(state.agent_pos, state.landmark_pos)[2].amin(dim=1).sum(dim=1)


def collisions(state: NavState) -> Tensor:
    """The number of other agents each agent overlaps (distance below 0.3): (E, N), float.

    Returned in the state's dtype so that means and rewards need no cast.
    """
    dist = _pairs(state.agent_pos, state.agent_pos)[2]
    # Each agent is at distance 0 from itself: one overlap too many.
    return (dist < 2 * AGENT_SIZE).sum(dim=-1).to(dist.dtype) - 1


def coverage(state: NavState, radius: float = 0.1) -> Tensor:
    """The fraction of landmarks with an agent closer than ``radius``: (E,)."""
    covered = _pairs(state.agent_pos, state.landmark_pos)[2].amin(dim=1) < radius
    return covered.to(state.agent_pos.dtype).mean(dim=1)


def _contact_forces(pos: Tensor) -> Tensor:
    """The sum over other agents of mpe2's soft contact force on each agent: (E, N, 2)."""
    dx, dy, dist = _pairs(pos, pos)
    # mpe2's penetration k * log(1 + exp(z)), z = -(dist - 0.3) / k, written
    # max(z, 0) + log(1 + exp(-|z|)); exp is floored at e^-40 (a force below 1e-17 instead of
    # a smaller one): denormal and underflowing exponentials are many times slower.
    z = dist.neg().add_(2 * AGENT_SIZE).div_(CONTACT_MARGIN)
    soft = z.abs().neg_().clamp_min_(-40.0).exp_().add_(1.0).log_()
    penetration = z.clamp_min_(0.0).add_(soft).mul_(CONTACT_MARGIN)
    # force on i = 100 * penetration * (pos_i - pos_j) / dist, zero on the diagonal (dx = 0),
    # and finite for two agents at the same place (mpe2 would divide 0 by 0).
    coef = penetration.mul_(CONTACT_FORCE).div_(dist.clamp_min_(1e-12))
    return torch.stack((dx.mul_(coef).sum(dim=-1), dy.mul_(coef).sum(dim=-1)), dim=-1)


class NavigationEnv:
    """``num_envs`` instances of cooperative navigation, stepped together on one device.

    Symmetry: equivariant to permuting the agents (their positions, velocities, actions and
    rewards alike) and invariant to permuting the landmarks, in every instance separately.

    ``agents`` agents and ``landmarks`` landmarks (as many as agents by default) in the square
    ``[-arena, arena]^2`` (``arena`` defaults to :func:`default_arena`), for ``max_steps``
    steps (:func:`default_max_steps`). ``reset(seed)`` draws agent and landmark positions
    uniformly in the arena, velocities zero, from a ``torch.Generator`` on ``device``: the same
    seed gives the same instances (on the CPU bit for bit; on a GPU, for one device type).
    ``reset()`` without a seed continues the generator's stream (seeded from entropy at
    construction). ``step(actions)`` takes (E, N) integers in 0..4 and returns the next state,
    the per-agent rewards (E, N) and whether the episodes are over (all end together, after
    ``max_steps`` steps; stepping further raises until ``reset``). The current state is
    ``env.state``, which may be assigned (a :class:`NavState` of the right shapes) to play from
    a given state.
    """

    def __init__(
        self,
        num_envs: int,
        agents: int = 3,
        landmarks: int | None = None,
        *,
        arena: float | None = None,
        max_steps: int | None = None,
        local_ratio: float = 0.5,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        landmarks = agents if landmarks is None else landmarks
        for name, value in (("num_envs", num_envs), ("agents", agents), ("landmarks", landmarks)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}={value!r}: must be an integer >= 1")
        arena = default_arena(agents) if arena is None else float(arena)
        if not arena > 0:
            raise ValueError(f"arena={arena!r}: the arena's half-width must be > 0")
        max_steps = default_max_steps(agents) if max_steps is None else max_steps
        if (
            isinstance(max_steps, bool)
            or not isinstance(max_steps, numbers.Integral)
            or max_steps < 1
        ):
            raise ValueError(f"max_steps={max_steps!r}: must be an integer >= 1")
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio={local_ratio!r}: must lie in [0, 1]")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype={dtype}: must be a floating-point dtype")
        self.num_envs, self.agents, self.landmarks = int(num_envs), int(agents), int(landmarks)
        self.arena, self.max_steps, self.local_ratio = arena, int(max_steps), float(local_ratio)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()
        self._moves = SENSITIVITY * torch.tensor(_MOVES, dtype=dtype, device=self.device)
        self._state: NavState | None = None

    def __repr__(self) -> str:
        return (
            f"NavigationEnv(num_envs={self.num_envs}, agents={self.agents}, "
            f"landmarks={self.landmarks}, arena={self.arena:g}, max_steps={self.max_steps}, "
            f"local_ratio={self.local_ratio:g}, device={self.device}, dtype={self.dtype})"
        )

    @property
    def state(self) -> NavState:
        if self._state is None:
            raise RuntimeError("call reset() before using the state of NavigationEnv")
        return self._state

    @state.setter
    def state(self, state: NavState) -> None:
        e, n, m = self.num_envs, self.agents, self.landmarks
        shapes = {
            "agent_pos": (e, n, 2),
            "agent_vel": (e, n, 2),
            "landmark_pos": (e, m, 2),
        }
        for name, shape in shapes.items():
            value = getattr(state, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"state.{name} has shape {tuple(value.shape)}; expected {shape}")
        if not 0 <= state.step <= self.max_steps:
            raise ValueError(f"state.step={state.step}: must lie in [0, {self.max_steps}]")
        self._state = NavState(
            *(getattr(state, name).to(self.device, self.dtype) for name in shapes), state.step
        )

    def reset(self, seed: int | None = None) -> NavState:
        if seed is not None:
            self.generator.manual_seed(seed)
        e, n, m, a = self.num_envs, self.agents, self.landmarks, self.arena
        kw = {"generator": self.generator, "device": self.device, "dtype": self.dtype}
        agent_pos = (2 * torch.rand(e, n, 2, **kw) - 1) * a
        landmark_pos = (2 * torch.rand(e, m, 2, **kw) - 1) * a
        self._state = NavState(agent_pos, torch.zeros_like(agent_pos), landmark_pos, 0)
        return self._state

    def step(self, actions: Tensor) -> tuple[NavState, Tensor, bool]:
        state = self.state
        if state.step >= self.max_steps:
            raise RuntimeError(
                f"the episodes are over ({self.max_steps} steps): call reset() before step()"
            )
        force = self._action_forces(actions) + _contact_forces(state.agent_pos)
        pos = state.agent_pos + state.agent_vel * DT
        vel = state.agent_vel * (1 - DAMPING) + (force / MASS) * DT
        nxt = NavState(pos, vel, state.landmark_pos, state.step + 1)
        self._state = nxt
        lr = self.local_ratio
        rewards = global_reward(nxt)[:, None] * (1 - lr) + (-collisions(nxt)) * lr
        return nxt, rewards, nxt.step >= self.max_steps

    def _action_forces(self, actions: Tensor) -> Tensor:
        actions = torch.as_tensor(actions)
        expected = (self.num_envs, self.agents)
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions have shape {tuple(actions.shape)}; expected {expected}")
        if (
            actions.dtype.is_floating_point
            or actions.dtype.is_complex
            or actions.dtype == torch.bool
        ):
            raise ValueError(f"actions have dtype {actions.dtype}; expected integers in 0..4")
        actions = actions.to(self.device)
        if not bool(((actions >= 0) & (actions < ACTIONS)).all()):
            raise ValueError(f"actions must lie in 0..{ACTIONS - 1} (mpe2's Discrete(5))")
        return self._moves[actions.long()]
