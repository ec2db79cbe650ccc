"""NavigationPPO: one policy for every agent, trained by PPO with a centralised value (MAPPO).

One update (:meth:`NavigationPPO.training_step`), top to bottom:

1. **Play.** ``E`` episodes of the team size the DataModule draws for this update are reset with
   a seed of the run, the rank and the update (so a resumed fit plays what an uninterrupted one
   plays) and played to their end, every agent's action drawn from the policy's softmax
   (:func:`rollout`). Kept: the states the actions were taken in, the actions, their
   log-probabilities, the values and the rewards the environment returned. The team's reward
   at a step is the mean over the agents of their rewards (the convention of
   :mod:`.evaluation`), divided by the number of landmarks so that the value, the return to go
   per landmark, has one scale at every team size.
2. **Advantages** (:func:`gae`): GAE(λ) of the team's rewards against the value, the episode's
   last step terminal (all episodes end together, at the time limit, and the value sees the
   step number); every agent of a team shares its team's advantage, normalised over the update.
3. **Loss** (:func:`ppo_loss`), for ``epochs`` passes over the ``E·T`` steps in ``minibatches``
   random minibatches: PPO's clipped surrogate on each agent's probability ratio,
   ``-mean(min(ρ A, clip(ρ, 1 ± ε) A))``, plus ``value_coef`` times the squared error of the
   value against the GAE return, minus ``entropy`` times the policy's entropy; one AdamW step
   per minibatch, gradients clipped to ``max_grad_norm``.

Validation plays the fixed instances of each validation size (the learned policy greedy, and the
baselines once per size) and logs team return, coverage and collisions per size, and a figure of
the agents' paths at the smallest and the largest size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from symlight.core.rep import Rep
from symlight.training import NetworkFactory, SymmetricModule, metric_key

from . import evaluation
from .baselines import baselines
from .env import NavigationEnv, NavState, coverage
from .figures import trajectory_figure

__all__ = ["CHECKPOINT_KEY", "NavigationPPO", "Rollout", "gae", "ppo_loss", "rollout"]

FIGURE_EPISODES = 3
"""Episodes of the smallest and the largest validation size drawn in the trajectories figure."""

CHECKPOINT_KEY = "symlight_navigation_policy"
"""Key under which a navigation policy checkpoint records its network."""

Policy = Callable[[NavState], Tensor]
"""A batched policy: a state of ``E`` episodes to the actions ``(E, N)`` of every agent."""


@dataclass(frozen=True)
class Rollout:
    """``E`` episodes of ``T`` steps played by a policy (``N`` agents, ``M`` landmarks).

    ``agent_pos`` and ``agent_vel`` ``(T, E, N, 2)`` are the states the actions were taken in,
    ``landmark_pos`` ``(E, M, 2)``; ``actions`` and ``log_probs`` ``(T, E, N)``; ``values``
    ``(T, E)`` the policy's values of those states; ``rewards`` ``(T, E)`` the team's reward
    (the mean over the agents) after each step; ``coverage`` ``(E,)`` at the end.
    """

    agent_pos: Tensor
    agent_vel: Tensor
    landmark_pos: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    rewards: Tensor
    coverage: Tensor

    def states(self, index: Tensor) -> NavState:
        """The states of the flat step indices ``index`` (``t · E + e``), ``step`` one per state."""
        episodes = self.actions.shape[1]
        t, e = index // episodes, index % episodes
        return NavState(
            self.agent_pos[t, e],
            self.agent_vel[t, e],
            self.landmark_pos[e],
            t,  # type: ignore[arg-type]
        )


@torch.no_grad()
def rollout(
    net: torch.nn.Module, env: NavigationEnv, seed: int, generator: torch.Generator
) -> Rollout:
    """Play ``env``'s episodes reset with ``seed`` to their end, drawing every agent's action
    from ``net``'s softmax with ``generator``.
    """
    state = env.reset(seed)
    pos, vel, actions, log_probs, values, rewards = [], [], [], [], [], []
    done = False
    while not done:
        logits, value = net(state)
        log_p = torch.log_softmax(logits.float(), -1)
        action = torch.multinomial(log_p.exp().flatten(0, 1), 1, generator=generator)
        action = action.view(logits.shape[:2])
        pos.append(state.agent_pos)
        vel.append(state.agent_vel)
        actions.append(action)
        log_probs.append(log_p.gather(-1, action[..., None])[..., 0])
        values.append(value.float())
        state, reward, done = env.step(action)
        rewards.append(reward.mean(1))
    return Rollout(
        torch.stack(pos), torch.stack(vel), state.landmark_pos, torch.stack(actions),
        torch.stack(log_probs), torch.stack(values), torch.stack(rewards), coverage(state),
    )  # fmt: skip


def gae(rewards: Tensor, values: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """GAE(λ) advantages and the returns ``advantages + values``, both ``(T, E)``, of episodes
    whose last step is terminal: ``δ_t = r_t + γ V_{t+1} - V_t`` (``V_T = 0``) and ``A_t = δ_t
    + γ λ A_{t+1}``.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    following = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * following - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        following = values[t]
    return advantages, advantages + values


def ppo_loss(
    logits: Tensor,
    value: Tensor,
    actions: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    returns: Tensor,
    clip: float,
    value_coef: float,
    entropy_coef: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's loss on a minibatch of ``B`` states of ``N`` agents.

    ``logits`` ``(B, N, 5)``, ``actions`` and ``old_log_probs`` ``(B, N)``; ``value``,
    ``advantages`` and ``returns`` ``(B,)`` (the team's, shared by its agents). Returns the loss
    and its terms (``policy``, ``value``, ``entropy``, ``approx_kl``, ``clip_fraction``).
    """
    log_p = torch.log_softmax(logits, -1)
    chosen = log_p.gather(-1, actions[..., None])[..., 0]
    log_ratio = chosen - old_log_probs
    ratio = log_ratio.exp()
    adv = advantages[:, None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    policy = -surrogate.mean()
    value_loss = 0.5 * (value - returns).square().mean()
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    loss = policy + value_coef * value_loss - entropy_coef * entropy
    with torch.no_grad():
        stats = {
            "policy": policy,
            "value": value_loss,
            "entropy": entropy,
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clip_fraction": ((ratio - 1).abs() > clip).float().mean(),
        }
    return loss, stats


class NavigationPPO(SymmetricModule):
    """A policy for every agent of a cooperative-navigation team, trained by MAPPO-style PPO.

    The policy is ``net`` (a network of :mod:`.networks`, built as ``net(2, 5, (1, 0))``),
    mapping a state to five logits per agent and the team's value; with
    :class:`~.networks.CentralisedPolicy` it is equivariant to S_N x S_M (relabelling the agents
    permutes their actions, relabelling the landmarks changes nothing) and runs at any team
    size. Train it with a :class:`~.task.NavigationDataModule`.

    Args:
        net: the network, built from the data's ``element_shape`` and ``rep_out``.
        element_shape: ``(2,)``, points of the plane (linked from the data).
        rep_out: ``5x(1,0)``, five logits per agent (linked from the data).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        schedule: learning-rate schedule over the updates (see
            :class:`~symlight.training.module.SymmetricModule`).
        gamma: discount of the returns.
        gae_lambda: λ of GAE.
        clip: PPO's clipping range ε of the probability ratio.
        epochs: passes over each update's steps.
        minibatches: minibatches per pass (one optimiser step each).
        value_coef: weight of the value loss.
        entropy: weight of the entropy bonus.
        max_grad_norm: gradients are clipped to this norm.
        greedy_eval: validate and test with each agent's most likely action rather than a
            sampled one.
        figure: log a figure of the agents' paths at the smallest and the largest validation
            size at each validation (:func:`~.figures.trajectory_figure`), to loggers that take
            figures (TensorBoard).
        threads: torch's intra-op CPU threads while this module runs (restored afterwards);
            ``None`` leaves torch's setting alone.

    """

    def __init__(
        self,
        net: NetworkFactory,
        element_shape: tuple[int, ...] = (2,),
        rep_out: str = "5x(1,0)",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        schedule: Literal["constant", "onecycle", "cosine"] = "constant",
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip: float = 0.2,
        epochs: int = 4,
        minibatches: int = 4,
        value_coef: float = 0.5,
        entropy: float = 0.01,
        max_grad_norm: float = 0.5,
        greedy_eval: bool = True,
        figure: bool = True,
        threads: int | None = 1,
    ) -> None:
        if tuple(element_shape) != (2,) or Rep.parse(rep_out) != Rep(5, (1, 0)):
            raise ValueError(
                f"NavigationPPO needs element_shape=(2,) and rep_out=5x(1,0) (five logits per "
                f"agent); got {tuple(element_shape)} and {rep_out}: train it with "
                "NavigationDataModule"
            )
        for name, value in (("epochs", epochs), ("minibatches", minibatches)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 0 < gamma <= 1 or not 0 <= gae_lambda <= 1 or not clip > 0:
            raise ValueError(f"need 0 < gamma <= 1, 0 <= gae_lambda <= 1 and clip > 0, got "
                             f"{gamma}, {gae_lambda}, {clip}")  # fmt: skip
        if entropy < 0 or value_coef < 0 or not max_grad_norm > 0:
            raise ValueError(f"need entropy >= 0, value_coef >= 0 and max_grad_norm > 0, got "
                             f"{entropy}, {value_coef}, {max_grad_norm}")  # fmt: skip
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        super().__init__(
            net, element_shape=tuple(element_shape), rep_out=rep_out, lr=lr,
            weight_decay=weight_decay, schedule=schedule,
        )  # fmt: skip
        self.automatic_optimization = False
        self._envs: dict[tuple, NavigationEnv] = {}
        self._baselines: dict[tuple, dict[str, Tensor]] = {}  # their figures, by size
        self._paths: dict[str, dict[str, dict[str, Tensor]]] = {}  # for the figure, by stage
        self._saved_threads: int | None = None

    # -- acting -------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The network on a batch of states (``agent_pos``, ``agent_vel``, ``landmark_pos``,
        ``step``, ``mask``): ``logits`` ``(E, N, 5)`` and the team's ``value`` repeated for
        every agent, ``(E, N, 1)`` (what the equivariance check compares, both order ``(1,0)``).
        """
        state = NavState(
            batch["agent_pos"], batch["agent_vel"], batch["landmark_pos"], int(batch.get("step", 0))
        )
        logits, value = self.net(state, batch.get("mask"))
        return {"logits": logits, "value": value[:, None, None].expand(*logits.shape[:2], 1)}

    @torch.no_grad()
    def act(
        self, state: NavState, greedy: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """Every agent's action ``(E, N)`` in ``state``: the most likely one, or drawn from the
        policy (with ``generator``).
        """
        logits, _ = self.net(state)
        if greedy:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float(), -1)
        return torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(logits.shape[:2])

    def policy(self, greedy: bool | None = None) -> Policy:
        """The network as a batched policy, ``policy(state) -> actions (E, N)`` (greedy as in
        ``greedy_eval`` by default).
        """
        greedy = self.hparams.greedy_eval if greedy is None else greedy
        generator = torch.Generator(device=self.device).manual_seed(0)
        return lambda state: self.act(state, greedy, generator)

    def env(self, agents: int, num_envs: int) -> NavigationEnv:
        """The task's environment for this size on this module's device (built once)."""
        key = (agents, num_envs, self.device)
        if key not in self._envs:
            self._envs[key] = self.task.make_env(agents, num_envs, self.device)
        return self._envs[key]

    # -- one update ---------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, int], batch_idx: int) -> None:
        hp = self.hparams
        agents, num_envs, seed = int(batch["agents"]), int(batch["num_envs"]), int(batch["seed"])
        generator = torch.Generator(device=self.device).manual_seed(seed)
        env = self.env(agents, num_envs)
        played = rollout(self.net, env, seed, generator)
        landmarks = played.landmark_pos.shape[1]
        advantages, returns = gae(
            played.rewards / landmarks, played.values, hp.gamma, hp.gae_lambda
        )
        advantages = (advantages - advantages.mean()) / advantages.std().clamp(min=1e-8)
        optimizer = self.optimizers()
        samples = played.actions.shape[0] * num_envs
        flat = {
            "actions": played.actions.flatten(0, 1),
            "log_probs": played.log_probs.flatten(0, 1),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
        }
        totals: dict[str, Tensor] = {}
        for _ in range(hp.epochs):
            order = torch.randperm(samples, generator=generator, device=self.device)
            for index in order.chunk(hp.minibatches):
                logits, value = self.net(played.states(index))
                loss, stats = ppo_loss(
                    logits, value, flat["actions"][index], flat["log_probs"][index],
                    flat["advantages"][index], flat["returns"][index], hp.clip, hp.value_coef,
                    hp.entropy,
                )  # fmt: skip
                optimizer.zero_grad()
                self.manual_backward(loss)
                self.clip_gradients(optimizer, hp.max_grad_norm, "norm")
                optimizer.step()
                for name, value_ in stats.items():
                    totals[name] = totals.get(name, 0.0) + value_ / (hp.epochs * hp.minibatches)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        size = {"batch_size": num_envs}
        team_return = played.rewards.sum(0).mean()
        self.log(f"train/return@N={agents}", team_return, **size)
        self.log(f"train/coverage@N={agents}", played.coverage.mean(), **size)
        self.log("train/return_per_landmark", team_return / landmarks, prog_bar=True, **size)
        for name, value_ in totals.items():
            self.log(f"train/{name}", value_, **size)

    # -- evaluation ---------------------------------------------------------------------------
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._evaluate(batch, "val", dataloader_idx)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._evaluate(batch, "test", dataloader_idx)

    def _evaluate(self, batch: Mapping[str, Any], stage: str, dataloader_idx: int) -> Tensor:
        """Play one evaluation size with the policy (and, once, the baselines) and log the
        figures: ``return``, ``coverage``, ``collisions`` and each baseline's ``return_<name>``
        and ``coverage_<name>``.
        """
        task = self.task
        suffix = task.val_names[dataloader_idx]
        agents, episodes, seed = int(batch["agents"]), int(batch["episodes"]), int(batch["seed"])
        options = {
            "arena": task.arena,
            "max_steps": task.episode_steps(agents),
            "device": self.device,
        }
        key = (stage, agents, episodes, seed)
        if key not in self._baselines:
            generator = torch.Generator(device=self.device).manual_seed(seed)
            self._baselines[key] = {}
            for name, policy in baselines(generator).items():
                figures = evaluation.play(policy, agents, episodes, seed, **options)
                self._baselines[key][f"return_{name}"] = figures["return"]
                self._baselines[key][f"coverage_{name}"] = figures["coverage"]
        drawn = self.hparams.figure and agents in (min(task.val_agents), max(task.val_agents))
        values = evaluation.play(self.policy(), agents, episodes, seed, trajectory=drawn, **options)
        if drawn:  # the first episodes' paths, for the figure at the epoch's end
            paths = {name: values.pop(name)[:, :FIGURE_EPISODES] for name in ("agent_pos",)}
            paths["landmark_pos"] = values.pop("landmark_pos")[:FIGURE_EPISODES]
            paths["coverage"] = values["coverage"][:FIGURE_EPISODES]
            self._paths.setdefault(stage, {})[f"N = {agents}"] = paths
        values = {**values, **self._baselines[key]}
        values = {name: value.to(self.device, torch.float32) for name, value in values.items()}
        self.update_metrics(values, stage, suffix)
        self.metrics[metric_key(stage, "coverage", "")].update(values["coverage"])
        return values["return"].mean()

    def on_validation_epoch_end(self) -> None:
        self._log_pooled("val")

    def on_test_epoch_end(self) -> None:
        self._log_pooled("test")

    def _log_pooled(self, stage: str) -> None:
        """Log the coverage over all sizes and the figure of the agents' paths."""
        metric = self.metrics[metric_key(stage, "coverage", "")]
        if metric.update_called:
            self.log(f"{stage}/coverage", metric.compute(), prog_bar=True)
        with torch.inference_mode(False):  # fresh states must not be inference tensors
            metric.reset()
        paths = self._paths.pop(stage, {})
        trainer = self.trainer
        if not paths or trainer.sanity_checking or trainer.global_rank != 0:
            return
        experiment = getattr(self.logger, "experiment", None) if self.logger else None
        if hasattr(experiment, "add_figure"):
            rows = dict(sorted(paths.items(), key=lambda row: int(row[0].split()[-1])))
            experiment.add_figure(
                f"{stage}/trajectories", trajectory_figure(rows), self.global_step
            )

    # -- housekeeping -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.hparams.threads is not None and self.device.type == "cpu":
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.hparams.threads)
        super().setup(stage)
        for stage_name in ("val", "test"):
            key = metric_key(stage_name, "coverage", "")
            if key not in self.metrics:
                self.metrics[key] = self.task.metrics()["coverage"].clone()

    def teardown(self, stage: str) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "network": type(self.net).__name__,
            "equivariant": bool(getattr(self.net, "equivariant", False)),
        }
