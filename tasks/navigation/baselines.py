"""The classic navigation policies: random, nearest landmark, and the assignment oracle.

Each is a batched policy ``policy(state: NavState) -> (E, N)`` int64 actions, as
:func:`~symlight.tasks.navigation.evaluation.play` takes. The two that drive to a landmark share
one controller, :func:`steer`, which reaches a target point and stays there under mpe2's
dynamics.

Symmetry: all three are equivariant to permuting the agents and invariant to permuting the
landmarks (``random_policy`` in distribution; the oracle up to ties between assignments of equal
total distance, which have probability zero for positions drawn from a density).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .env import ACTIONS, DAMPING, DT, MASS, SENSITIVITY, NavState

__all__ = [
    "assignment",
    "assignment_oracle",
    "baselines",
    "nearest_landmark",
    "oracle_targets",
    "random_policy",
    "steer",
]

_MOVES = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))  # actions 0..4
LOOKAHEAD = ((1, 1.0), (3, 0.3))
"""The controller's cost: (steps coasted after the next one, weight) per predicted position."""


def random_policy(generator: torch.Generator | None = None):
    """Uniform actions, drawn from ``generator`` (on the state's device) when one is given."""

    def policy(state: NavState) -> Tensor:
        e, n, _ = state.agent_pos.shape
        device = state.agent_pos.device
        return torch.randint(ACTIONS, (e, n), generator=generator, device=device)

    return policy


def steer(state: NavState, target: Tensor) -> Tensor:
    """The action that takes each agent to its ``target`` (E, N, 2) and holds it there: (E, N).

    mpe2's dynamics, without contact forces: ``pos' = pos + dt * vel`` then
    ``vel' = 0.75 * vel + dt * force`` (``dt = 0.1``, ``force`` 5 along one axis or 0), so an
    action moves the agent from the step after next on, and a push keeps carrying it for several
    steps. For each of the 5 actions the controller predicts the agent's position two steps
    ahead and four steps ahead (coasting, no force, after this step's push), and takes the action
    whose predicted distances to the target, weighted 1 and 0.3, sum least (the no-op wins ties,
    so an agent at rest on its target stays). The first term drives the agent there by the
    shortest time; the second brakes early enough not to overshoot. From rest anywhere in mpe2's
    arena it reaches its target within 22 steps and then keeps within about 0.05 of it, moving
    back and forth (one push changes the velocity by 0.5, so it cannot stand still off the grid
    of points where a push-free agent comes to rest).
    """
    pos, vel = state.agent_pos, state.agent_vel
    moves = SENSITIVITY * DT / MASS * torch.tensor(_MOVES, dtype=pos.dtype, device=pos.device)
    first = (pos + DT * vel)[:, :, None, :]  # (E, N, 1, 2): the next position, whatever we do
    pushed = (1 - DAMPING) * vel[:, :, None, :] + moves  # (E, N, 5, 2): the next velocity
    cost = 0.0
    for coast, weight in LOOKAHEAD:
        travel = DT * (1 - (1 - DAMPING) ** coast) / DAMPING  # distance per unit of velocity
        predicted = first + travel * pushed
        cost = cost + weight * (predicted - target[:, :, None, :]).norm(dim=-1)
    return cost.argmin(dim=-1)


def _distances(state: NavState) -> Tensor:
    """``d[e, i, m]``: agent ``i`` to landmark ``m``: (E, N, M)."""
    return torch.cdist(state.agent_pos, state.landmark_pos)


def _take(points: Tensor, index: Tensor) -> Tensor:
    """``points[e, index[e, i]]``: (E, K, 2) by (E, N) -> (E, N, 2)."""
    return torch.gather(points, 1, index[..., None].expand(-1, -1, points.shape[-1]))


def nearest_landmark(state: NavState) -> Tensor:
    """Each agent drives (:func:`steer`) to the landmark nearest to it now, whatever the others do."""
    return steer(state, _take(state.landmark_pos, _distances(state).argmin(dim=-1)))


def assignment(state: NavState) -> tuple[Tensor, Tensor]:
    """The assignment of agents to landmarks of least total distance, both ways.

    ``scipy.optimize.linear_sum_assignment`` on the (N, M) distances of each episode, on the CPU.
    Returns ``landmark_of`` (E, N), each agent's landmark, and ``agent_of`` (E, M), each
    landmark's agent; -1 where there is none (more agents than landmarks or the reverse).
    """
    dist = _distances(state).double().cpu().numpy()
    e, n, m = dist.shape
    landmark_of = np.full((e, n), -1, dtype=np.int64)
    agent_of = np.full((e, m), -1, dtype=np.int64)
    for k in range(e):
        rows, cols = linear_sum_assignment(dist[k])
        landmark_of[k, rows], agent_of[k, cols] = cols, rows
    device = state.agent_pos.device
    return torch.from_numpy(landmark_of).to(device), torch.from_numpy(agent_of).to(device)


SPACING = 0.34
"""The oracle keeps its agents' targets this far apart: agents collide closer than 0.3."""
SLACK = 0.07
"""How far the oracle moves a target off its landmark to keep the spacing (coverage: 0.1)."""
MERGE = 0.16
"""Two landmarks closer than this (each the other's nearest) are covered by one agent."""


def oracle_targets(state: NavState) -> Tensor:
    """The point each agent of :func:`assignment_oracle` drives to: (E, N, 2).

    Each agent's target is its landmark in :func:`assignment`, then adjusted for the agents'
    size (discs of radius 0.15 that collide, and push each other apart, closer than 0.3):

    - two landmarks closer than :data:`MERGE`, each the other's nearest, are covered together:
      the one of their two agents nearer their midpoint drives there (within 0.08 of both), the
      other parks :data:`SPACING` away from it, on its own side;
    - targets closer than :data:`SPACING` are pushed apart (ten rounds of moving each pair apart
      by half its shortfall), each kept within :data:`SLACK` of its landmark or midpoint (parked
      agents and agents without a landmark may move any distance).
    """
    pos, marks = state.agent_pos, state.landmark_pos
    e, n, _ = pos.shape
    m = marks.shape[1]
    landmark_of, agent_of = assignment(state)
    has = landmark_of >= 0
    mine = landmark_of.clamp(min=0)
    eye = torch.eye(m, dtype=torch.bool, device=pos.device)
    gap, partner = torch.cdist(marks, marks).masked_fill(eye, torch.inf).min(dim=-1)  # (E, M)
    mutual = torch.gather(partner, 1, partner) == torch.arange(m, device=pos.device)
    merged = torch.gather(mutual & (gap < MERGE), 1, mine) & has  # (E, N)
    centre = _take((marks + _take(marks, partner)) / 2, mine)  # (E, N, 2)
    other = torch.gather(agent_of, 1, torch.gather(partner, 1, mine))  # the partner's agent
    near = (pos - centre).norm(dim=-1)
    far = torch.where(other >= 0, (_take(pos, other.clamp(min=0)) - centre).norm(dim=-1), torch.inf)
    index = torch.arange(n, device=pos.device)
    parks = merged & ((near > far) | ((near == far) & (index > other)))
    anchor = torch.where(
        merged[..., None], centre, torch.where(has[..., None], _take(marks, mine), pos)
    )
    away = pos - centre
    away = away / away.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    target = torch.where(parks[..., None], centre + SPACING * away, anchor)
    free = (parks | ~has)[..., None]
    apart = ~torch.eye(n, dtype=torch.bool, device=pos.device)[..., None]
    for _ in range(10):
        delta = target[:, :, None, :] - target[:, None, :, :]  # (E, N, N, 2)
        dist = delta.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        push = (0.5 * (SPACING - dist).clamp_min(0) * delta / dist * apart).sum(dim=2)
        target = target + push
        off = target - anchor
        held = anchor + off * (SLACK / off.norm(dim=-1, keepdim=True).clamp_min(SLACK))
        target = torch.where(free, target, held)
    return target


def assignment_oracle(state: NavState) -> Tensor:
    """Each agent drives (:func:`steer`) to its landmark in the assignment of least total distance.

    The assignment (:func:`assignment`) and the targets (:func:`oracle_targets`, which make room
    for the agents' size) are recomputed at every step from the current positions, so the policy
    is a function of the state alone. Moving every agent straight towards its own landmark keeps
    the assignment optimal (each assigned distance falls by the distance moved, any other
    agent-landmark distance by at most as much), so re-assigning changes the targets only where
    momentum or contact forces have moved agents off those lines. It knows the whole state and
    plans for the team: a near-upper bound on coverage, though it does not steer clear of other
    agents on the way.
    """
    return steer(state, oracle_targets(state))


def baselines(generator: torch.Generator | None = None) -> dict:
    """The three baselines by name (``random``, ``nearest``, ``oracle``), as tables list them."""
    return {
        "random": random_policy(generator),
        "nearest": nearest_landmark,
        "oracle": assignment_oracle,
    }
