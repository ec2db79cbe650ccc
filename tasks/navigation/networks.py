"""Policies for cooperative navigation: networks from a :class:`~.env.NavState` to every agent's
action logits and the team's value.

Every network here maps a state of ``E`` episodes, ``N`` agents and ``M`` landmarks to
``(logits (E, N, 5), value (E,))``: one distribution over the five actions per agent, and one
value for the team (the expected return to go per landmark, see :mod:`.training`). They read the
state as sets (:func:`features`): what agent ``i`` sees of landmark ``j`` (a tensor of rep
``5x(1,1)``) and of agent ``k`` (``6x(2,0)``), relative positions only, so every policy is
invariant to translating the arena.

- :class:`CentralisedPolicy` and :class:`DecentralisedPolicy` are equivariant to S_N x S_M by
  construction: relabelling the agents permutes the logits, relabelling the landmarks changes
  nothing, and the value is invariant to both. They run at any N and M.
- :class:`MLPPolicy` reads mpe2's concatenated observations at one fixed N (not equivariant), and
  :class:`NearestKPolicy` each agent's ``k`` nearest landmarks and ``k - 1`` nearest agents,
  padded when there are fewer (runs at any N): the baselines of the same training.

Each is built as ``net(in_channels, out_channels, out_order)`` from the task's declaration
(``in_channels = 2``: agents and landmarks are points of the plane; ``5x(1,0)``: five logits per
agent), so a config names it as ``model.init_args.net``. Masks: a batch has one N and one M, so
nothing is padded in training; ``mask`` may still be the tuple ``(agents (E, N), landmarks (E,
M))`` of bool masks that the equivariance check passes, and padded agents get zero logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from symlight.core.rep import Rep, SetMask, set_masks
from symlight.models import (
    MLP,
    Activation,
    AxisPool,
    LayerNorm,
    ProductLinear,
    Residual,
    SetModule,
    Sinkhorn,
    masked_pool,
)

from .env import ACTIONS, NavState, observations

__all__ = [
    "AGENT_FEATURES",
    "LANDMARK_FEATURES",
    "CentralisedPolicy",
    "DecentralisedPolicy",
    "MLPPolicy",
    "NavigationNetwork",
    "NearestKPolicy",
    "SetFeatures",
    "features",
]

LANDMARK_FEATURES = 5
"""Per (agent ``i``, landmark ``j``): ``l_j - a_i`` (2) and its length, both shortened to the
reach (:func:`features`), and ``v_i`` (2)."""

AGENT_FEATURES = 6
"""Per (agent ``i``, agent ``k``): ``a_k - a_i`` (2) and its length, shortened to the reach,
``v_k - v_i`` (2) and ``1`` for another agent, ``0`` for ``k = i`` (so that a pool over ``k`` can
leave ``i`` out)."""


TIE_BREAK = 1e-3
"""Weight of an agent's own preference where its assignment weights tie (CentralisedPolicy)."""

OUTPUT = Rep(ACTIONS, (1, 0))
"""What every policy returns per agent: ``5x(1,0)``, logits over the agents, none over the
landmarks."""


@dataclass(frozen=True)
class SetFeatures:
    """A state as tensors over the sets of agents (``N``) and landmarks (``M``).

    ``landmarks``: ``(E, N, M, 5)``, rep ``5x(1,1)`` (:data:`LANDMARK_FEATURES`); ``agents``:
    ``(E, N, N, 6)``, rep ``6x(2,0)`` (:data:`AGENT_FEATURES`). Permuting the agents permutes
    both along their agent axes, permuting the landmarks permutes ``landmarks`` along dim 2.
    """

    landmarks: Tensor
    agents: Tensor


def features(state: NavState, reach: float = 1.0, dtype: torch.dtype | None = None) -> SetFeatures:
    """The state as sets (:class:`SetFeatures`): relative positions, distances and velocities
    only, so they do not change when the whole arena is translated. A relative position
    farther than ``reach`` is shortened to it, its direction kept (and its length clipped
    alike): near entities are seen exactly, far ones as a direction, so a network trained on a
    small arena sees nothing larger than it has seen in a larger one.
    """
    pos, vel, marks = state.agent_pos, state.agent_vel, state.landmark_pos
    if dtype is not None:
        pos, vel, marks = pos.to(dtype), vel.to(dtype), marks.to(dtype)
    n, m = pos.shape[1], marks.shape[1]
    to_landmark = _within_reach(marks[:, None, :, :] - pos[:, :, None, :], reach)  # (E,N,M,3)
    landmarks = torch.cat([to_landmark, vel[:, :, None, :].expand(-1, n, m, 2)], -1)
    to_agent = _within_reach(pos[:, None, :, :] - pos[:, :, None, :], reach)  # a_k - a_i: [i, k]
    other = (~torch.eye(n, dtype=torch.bool, device=pos.device)).to(pos.dtype)
    agents = torch.cat(
        [
            to_agent,
            vel[:, None, :, :] - vel[:, :, None, :],
            other[None, :, :, None].expand(pos.shape[0], n, n, 1),
        ],
        -1,
    )
    return SetFeatures(landmarks, agents)


def _within_reach(v: Tensor, reach: float) -> Tensor:
    """Vectors ``v`` (..., 2) shortened to at most ``reach``, and their lengths clipped alike:
    (..., 3).
    """
    length = v.square().sum(-1, keepdim=True).sqrt()
    clipped = length.clamp(max=reach)
    return torch.cat([v * (clipped / length.clamp(min=1e-12)), clipped], -1)


def _check_io(name: str, in_channels: int, out_channels: int, out_order) -> None:
    orders = tuple(out_order) if isinstance(out_order, (tuple, list)) else (out_order,)
    if in_channels != 2 or out_channels != ACTIONS or orders != OUTPUT.orders:
        raise ValueError(
            f"{name} acts in the plane: it is built as {name}(2, {ACTIONS}, (1, 0)) (points of "
            f"the plane in, {ACTIONS} logits per agent out), got ({in_channels}, {out_channels}, "
            f"{out_order}): train it with NavigationDataModule"
        )


def _check_reach(reach: float) -> float:
    if not reach > 0:
        raise ValueError(f"reach must be a positive distance, got {reach}")
    return float(reach)


def _masks(state: NavState, mask: SetMask) -> tuple[tuple[Tensor, Tensor], SetMask]:
    """The ``(E, N)`` agent and ``(E, M)`` landmark masks (all real when ``mask`` is None), and
    the mask to hand the layers: None when nothing is padded, which spares them the masking.
    """
    agents, landmarks = set_masks(mask, 2)
    e, n, m = state.agent_pos.shape[0], state.agent_pos.shape[1], state.landmark_pos.shape[1]
    device = state.agent_pos.device
    padded = any(s is not None and not bool(s.all()) for s in (agents, landmarks))
    if agents is None:
        agents = torch.ones(e, n, dtype=torch.bool, device=device)
    if landmarks is None:
        landmarks = torch.ones(e, m, dtype=torch.bool, device=device)
    return (agents, landmarks), ((agents, landmarks) if padded else None)


def _time(state: NavState, like: Tensor) -> Tensor:
    """The step number over mpe2's episode length, ``(E, 1)``: ``state.step`` is one int for
    all episodes, or one per episode (a minibatch of states of different steps).
    """
    step = torch.as_tensor(state.step, dtype=like.dtype, device=like.device)
    return (step / 25.0).expand(like.shape[0]).reshape(-1, 1)


def _dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


class NavigationNetwork(SetModule):
    """A policy network: ``forward(state, mask=None) -> (logits (E, N, 5), value (E,))``.

    ``rep_in`` is ``2x(1,1)``: points of the plane over the agents and the landmarks (the
    network reads a :class:`~.env.NavState`, agent positions and velocities of order ``(1,0)``
    and landmark positions of order ``(0,1)``); ``rep_out`` is ``5x(1,0)``, the logits of each
    agent. ``equivariant`` says whether the network is equivariant to S_N x S_M by
    construction.
    """

    equivariant: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__(Rep(2, (1, 1)), OUTPUT)

    def forward(self, state: NavState, mask: SetMask = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def _block(hidden: int, pooling: str) -> Residual:
    """``h + linear(act(linear(norm(h))))`` over agents x landmarks, both linear maps complete."""
    order = (1, 1)
    return Residual(
        [
            LayerNorm(hidden, order),
            ProductLinear(order, order, hidden, hidden, pooling),
            Activation("relu", order, hidden),
            ProductLinear(order, order, hidden, hidden, pooling),
        ]
    )


class CentralisedPolicy(NavigationNetwork):
    """One network acting for every agent, equivariant to S_N x S_M: relabelling the agents
    permutes the logits the same way, relabelling the landmarks leaves them unchanged, and the
    value is invariant to both: ``f((P, Q)·s) = (P·logits, value)``.

    It reads the state as sets (:func:`features`, relative positions shortened to ``reach``)
    and computes a vector ``h_ij`` per (agent, landmark) pair (rep ``Hx(1,1)``):

    1. ``h = relu(A x + B y)``: :class:`~symlight.models.ProductLinear` maps of the agent x
       landmark features ``x`` (``(1,1) -> (1,1)``, 4 basis maps: the pair, its row, its
       column, all) and of the agent x agent features ``y`` (``(2,0) -> (1,0)``, the 5 maps from
       pairs to agents), broadcast over the landmarks;
    2. ``blocks`` residual blocks of two complete ``(1,1) -> (1,1)`` maps, so every pair sees
       how near the other agents are to its landmark (a column pool) and which other landmarks
       its agent has (a row pool);
    3. an assignment: a score per pair, normalised by ``sinkhorn`` Sinkhorn rounds over the
       agents and the landmarks into a soft assignment ``w_ij`` (each landmark's weights sum to
       one over the agents, each agent's nearly to one over the landmarks; with ``sinkhorn:
       0``, a softmax over each agent's landmarks). Each agent's summary is ``Σ_j w_ij h_ij``,
       ``max_j h_ij`` and the features ``x_ij*`` of its own landmark ``j* = argmax_j w_ij``,
       read exactly: where it is going;
    4. a shared MLP from each agent's summary to its 5 logits, and an MLP from the mean and the
       max of ``h`` over all pairs, and the step number, to the value.

    Every map is equivariant, so the network is too, for any N and M (the choice of ``j*``
    except where weights tie exactly; a lone agent's do, and its preference, a softmax of its
    scores over the landmarks, decides). Pools are means (``pooling``) and nothing the network
    sees grows with the arena (``reach``), so a policy trained on 3 to 5 agents runs on 20.
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = ACTIONS,
        out_order: Sequence[int] = (1, 0),
        hidden: int = 32,
        blocks: int = 1,
        pooling: str = "mean",
        sinkhorn: int = 5,
        reach: float = 1.0,
    ) -> None:
        super().__init__()
        _check_io(type(self).__name__, in_channels, out_channels, out_order)
        self.reach = _check_reach(reach)
        if blocks < 0 or sinkhorn < 0 or hidden < 1:
            raise ValueError(f"need hidden >= 1, blocks >= 0 and sinkhorn >= 0, got "
                             f"{hidden}, {blocks}, {sinkhorn}")  # fmt: skip
        pair = (1, 1)
        self.embed_landmarks = ProductLinear(pair, pair, LANDMARK_FEATURES, hidden, pooling)
        self.embed_agents = ProductLinear((2, 0), (1, 0), AGENT_FEATURES, hidden, pooling, False)
        self.blocks = nn.ModuleList(_block(hidden, pooling) for _ in range(blocks))
        self.norm = LayerNorm(hidden, pair)
        self.score = ProductLinear(pair, pair, hidden, 1, pooling)
        self.assign = Sinkhorn(1, sinkhorn, order=pair) if sinkhorn else None
        self.pool = AxisPool(pair, set=1, reduce="max", channels=hidden)
        self.actor = MLP(2 * hidden + LANDMARK_FEATURES, ACTIONS, hidden, 2, order=(1, 0))
        self.critic = nn.Sequential(
            nn.Linear(2 * hidden + 1, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, state: NavState, mask: SetMask = None) -> tuple[Tensor, Tensor]:
        (agents, landmarks), masks = _masks(state, mask)
        x = features(state, self.reach, _dtype(self))
        per_agent = self.embed_agents(x.agents, masks)[:, :, None, :]  # over every landmark
        h = torch.relu(self.embed_landmarks(x.landmarks, masks) + per_agent)
        for block in self.blocks:
            h = block(h, masks)
        h = self.norm(h, masks)
        keep = None if masks is None else Rep(1, (1, 1)).mask(masks)  # (E, N, M, 1)
        score = self.score(h, masks)
        low = torch.finfo(score.dtype).min
        preference = torch.softmax(score if keep is None else score.masked_fill(~keep, low), 2)
        weight = preference if self.assign is None else self.assign(score, masks).exp()
        if keep is not None:
            weight = weight.masked_fill(~keep, 0.0)
        # each agent's own landmark: the one it weighs most; where weights tie (a lone agent
        # weighs every landmark 1), its own preference decides
        own = (weight + TIE_BREAK * preference).argmax(2, keepdim=True)
        target = x.landmarks.gather(2, own.expand(-1, -1, 1, LANDMARK_FEATURES))[:, :, 0]
        summary = torch.cat([(weight * h).sum(2), self.pool(h, masks), target], -1)
        logits = self.actor(summary, masks)
        pooled = torch.cat(
            [
                masked_pool(h, keep, (1, 2), "mean"),
                masked_pool(h, keep, (1, 2), "max"),
                _time(state, h),
            ],
            -1,
        )
        return logits, self.critic(pooled).squeeze(-1)


class DecentralisedPolicy(NavigationNetwork):
    """Each agent acts on its own relative view, with the same weights for every agent:
    equivariant to S_N x S_M (relabelling the agents permutes the logits, relabelling the
    landmarks leaves them unchanged; the value is invariant to both).

    Agent ``i`` sees the landmarks as a set (a DeepSets: a shared MLP on each ``x_ij``, then the
    mean and the max over ``j``) and the other agents as a set (the same on each ``y_ik``, pooled
    over ``k ≠ i``); an MLP maps the two summaries and its velocity to its logits. Nothing is
    pooled across agents except in the value head (the mean of the agents' summaries).
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = ACTIONS,
        out_order: Sequence[int] = (1, 0),
        hidden: int = 64,
        reach: float = 1.0,
    ) -> None:
        super().__init__()
        _check_io(type(self).__name__, in_channels, out_channels, out_order)
        self.reach = _check_reach(reach)
        self.landmark_net = MLP(LANDMARK_FEATURES, hidden, hidden, 2, order=(1, 1))
        self.agent_net = MLP(AGENT_FEATURES, hidden, hidden, 2, order=(2, 0))
        self.actor = MLP(4 * hidden + 2, ACTIONS, hidden, 2, order=(1, 0))
        self.critic = nn.Sequential(
            nn.Linear(4 * hidden + 3, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, state: NavState, mask: SetMask = None) -> tuple[Tensor, Tensor]:
        (agents, landmarks), masks = _masks(state, mask)
        x = features(state, self.reach, _dtype(self))
        seen = torch.relu(self.landmark_net(x.landmarks, masks))  # (E, N, M, H)
        met = torch.relu(self.agent_net(x.agents, masks))  # (E, N, N, H)
        keep = None if masks is None else landmarks[:, None, :, None]
        others = ~torch.eye(agents.shape[1], dtype=torch.bool, device=agents.device)
        others = (agents[:, None, :] & others)[..., None]  # agent k != i, real
        vel = state.agent_vel.to(seen.dtype)
        summary = torch.cat(
            [
                masked_pool(seen, keep, 2, "mean"),
                masked_pool(seen, keep, 2, "max"),
                masked_pool(met, others, 2, "mean"),
                masked_pool(met, others, 2, "max"),
                vel,
            ],
            -1,
        )
        logits = self.actor(summary, masks)
        team = masked_pool(summary, None if masks is None else agents[..., None], 1, "mean")
        return logits, self.critic(torch.cat([team, _time(state, team)], -1)).squeeze(-1)


class MLPPolicy(NavigationNetwork):
    """An MLP over mpe2's observations at a fixed number of agents: **not** equivariant.

    Each agent's logits come from an MLP (the same for every agent, as MAPPO shares its actor)
    on that agent's observation vector (its velocity and position, then the landmarks and the
    other agents in their index order); the value from an MLP on all the observations
    concatenated in agent order. Relabelling the landmarks or the agents changes the vectors, so
    the outputs change: the baseline that the equivariant policies are compared to. It runs at
    ``agents`` agents and as many landmarks only.
    """

    equivariant = False

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = ACTIONS,
        out_order: Sequence[int] = (1, 0),
        agents: int = 3,
        hidden: int = 64,
        depth: int = 2,
    ) -> None:
        super().__init__()
        _check_io(type(self).__name__, in_channels, out_channels, out_order)
        if agents < 1:
            raise ValueError(f"agents must be at least 1, got {agents}")
        self.agents = agents
        size = 4 + 2 * agents + 4 * (agents - 1)  # mpe2's layout, communication zeros included
        self.actor = _mlp(size, ACTIONS, hidden, depth)
        self.critic = _mlp(size * agents, 1, hidden, depth)

    def forward(self, state: NavState, mask: SetMask = None) -> tuple[Tensor, Tensor]:
        n, m = state.agent_pos.shape[1], state.landmark_pos.shape[1]
        if n != self.agents or m != self.agents:
            raise ValueError(
                f"MLPPolicy was built for {self.agents} agents and landmarks, got {n} agents and "
                f"{m} landmarks: it runs at its own N only (NearestKPolicy runs at any N)"
            )
        obs = observations(state).to(_dtype(self))  # (E, N, size)
        logits = self.actor(obs)
        return logits, self.critic(obs.flatten(1)).squeeze(-1)


class NearestKPolicy(NavigationNetwork):
    """An MLP over each agent's ``k`` nearest landmarks and ``k - 1`` nearest other agents,
    nearest first and padded with zeros when there are fewer: runs at any number of agents.

    Per landmark ``l_j - a_i``, its distance and a flag that it is there; per agent ``a_k -
    a_i``, ``v_k - v_i``, the distance and the flag; then the agent's velocity (mpe2's
    observation, sorted and cut). Sorting by
    distance makes it equivariant to relabelling except where two distances tie, but it sees a
    fixed number of entities, whatever N. The value is the mean over the agents of an MLP of the
    same input.
    """

    equivariant = False

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = ACTIONS,
        out_order: Sequence[int] = (1, 0),
        k: int = 3,
        hidden: int = 64,
        depth: int = 2,
    ) -> None:
        super().__init__()
        _check_io(type(self).__name__, in_channels, out_channels, out_order)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        size = 4 * k + 6 * (k - 1) + 2
        self.actor = _mlp(size, ACTIONS, hidden, depth)
        self.critic = _mlp(size, 1, hidden, depth)

    def forward(self, state: NavState, mask: SetMask = None) -> tuple[Tensor, Tensor]:
        (agents, landmarks), _ = _masks(state, mask)
        dtype = _dtype(self)
        pos, vel = state.agent_pos.to(dtype), state.agent_vel.to(dtype)
        to_marks = state.landmark_pos.to(dtype)[:, None, :, :] - pos[:, :, None, :]
        to_agents = pos[:, None, :, :] - pos[:, :, None, :]  # a_k - a_i at [i, k]
        marks = torch.cat([to_marks, _length(to_marks)], -1)  # (E, N, M, 3)
        others = torch.cat(
            [to_agents, vel[:, None, :, :] - vel[:, :, None, :], _length(to_agents)], -1
        )  # (E, N, N, 5)
        own = ~torch.eye(agents.shape[1], dtype=torch.bool, device=agents.device)
        near_marks = _nearest(marks, landmarks[:, None, :].expand(marks.shape[:3]), self.k)
        near_agents = _nearest(others, agents[:, None, :] & own, self.k - 1)
        obs = torch.cat([near_marks, near_agents, vel], -1)  # (E, N, size)
        logits = self.actor(obs).masked_fill(~agents[..., None], 0.0)
        value = masked_pool(self.critic(obs), agents[..., None], 1, "mean").squeeze(-1)
        return logits, value


def _length(v: Tensor) -> Tensor:
    return v.square().sum(-1, keepdim=True).sqrt()


def _nearest(entries: Tensor, real: Tensor, k: int) -> Tensor:
    """The ``k`` entries of smallest distance (their last channel) among the real ones of each
    row, each with a flag 1 (0 and zeros for the padding): ``(E, N, K, C) -> (E, N, k (C + 1))``.
    """
    e, n = entries.shape[:2]
    if k == 0:
        return entries.new_zeros(e, n, 0)
    dist = entries[..., -1].masked_fill(~real, math.inf)
    take = min(k, entries.shape[2])
    order = dist.topk(take, dim=2, largest=False).indices  # (E, N, take)
    picked = entries.gather(2, order[..., None].expand(-1, -1, -1, entries.shape[-1]))
    present = real.gather(2, order)[..., None].to(entries.dtype)
    picked = torch.cat([picked * present, present], -1)
    if take < k:
        picked = torch.cat([picked, picked.new_zeros(e, n, k - take, picked.shape[-1])], 2)
    return picked.flatten(2)


def _mlp(inputs: int, outputs: int, hidden: int, depth: int) -> nn.Sequential:
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    widths = [inputs] + [hidden] * depth
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], outputs))
