"""BanditPolicyGradient: a policy over arms trained by policy gradient on the rewards it receives.

One update (:meth:`BanditPolicyGradient.training_step`), top to bottom:

1. **Play.** The task's vector environment, ``B`` episodes of the ``(k, n)`` the DataModule names
   for this step, is reset with a seed of the run, the rank and the update number (so a resumed
   fit plays what an uninterrupted one plays) and played to its end by drawing arms from the
   policy's softmax, in which the untried arms are one choice (:func:`~.policies.sampling_logits`).
   Kept: what the environment returned, observations, actions ``a_t`` and rewards ``r_t``
   (:func:`~.play.play`; ``info`` is never read).
2. **Advantages** (:func:`advantages`). Episode ``b``'s reward-to-go ``G_t^b = Σ_{s≥t} r_s^b``
   minus the mean reward-to-go of the other ``B − 1`` episodes at the same step (a leave-one-out
   baseline: the other episodes are independent of episode ``b``'s actions, so the gradient
   stays unbiased), divided by the standard deviation over the update:
   ``A_t^b = (G_t^b − mean_{b' ≠ b} G_t^{b'}) / σ``.
3. **Loss** (:func:`policy_loss`), on ``grad_samples`` pulls ``(t, b)`` drawn at random from the
   ``n·B`` played (all of them when fewer): REINFORCE with an entropy bonus,
   ``−mean(A_t^b · log π(a_t^b | s_t^b)) − c · mean(H(π(· | s_t^b)))``, whose gradient estimates
   the gradient of the expected total reward (scaled by ``1/σ``) plus ``c`` times that of the
   policy's entropy.

``advantage: expected_reward`` is a simulation-only variant: it replaces each reward by the mean of
the arm pulled and subtracts the instance's best mean, means the simulator knows and a real
environment does not (the return-to-go is then minus the pseudo-regret to go). Its gradient has the
same expectation with less noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from symlight.core.rep import Rep
from symlight.core.seeding import stream_seed
from symlight.training import NetworkFactory, SymmetricModule, attached_trainer

from . import evaluation
from .env import ENV_ID
from .features import NUM_FEATURES, arm_features
from .play import Episodes, play, pseudo_regret
from .policies import PolicyFunction, sampling_logits
from .prior import UNIFORM, Prior

__all__ = ["CHECKPOINT_KEY", "BanditPolicyGradient", "advantages", "policy_loss"]

CHECKPOINT_KEY = "symlight_bandit_policy"
"""Key under which a bandit policy checkpoint records what its network expects."""


def rewards_to_go(rewards: Tensor) -> Tensor:
    """``G_t = Σ_{s≥t} r_s`` of rewards (T, B), along the steps."""
    return rewards.flip(0).cumsum(0).flip(0)


def advantages(returns: Tensor, normalise: bool = True) -> Tensor:
    """Returns (T, B) minus the mean return of the other episodes at the same step (leave-one-out);
    ``normalise`` divides them by their standard deviation over the batch.
    """
    others = (returns.sum(1, keepdim=True) - returns) / max(returns.shape[1] - 1, 1)
    adv = returns - others
    return adv / adv.std().clamp(min=1e-8) if normalise else adv


def policy_loss(
    logits: Tensor, actions: Tensor, advantage: Tensor, entropy_coef: float
) -> tuple[Tensor, Tensor]:
    """REINFORCE with an entropy bonus: ``-(A · log π(a)) - c · H(π)``, averaged over the steps.

    ``logits`` ``(N, k)``, ``actions`` and ``advantage`` ``(N,)``. Returns ``(loss, entropy)``.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    chosen = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(-1).mean()
    return -(advantage.detach() * chosen).mean() - entropy_coef * entropy, entropy


class BanditPolicyGradient(SymmetricModule):
    """A policy over bandit arms trained by policy gradient on the environment's rewards.

    The policy is ``net`` (any network from :mod:`symlight.models` built as
    ``net(in_channels, 1, 1)``), mapping per-arm features to one logit per arm, so it is
    equivariant to permutations of the arms (S_k) and runs at any number of arms and any horizon.
    Train it with a :class:`~.task.BanditDataModule`.

    Args:
        net: the network, built from the data's ``element_shape`` and ``rep_out``.
        element_shape: ``(num_features,)`` (linked from the data).
        rep_out: ``1x1``, one logit per arm, equivariant to S_k (linked from the data).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        schedule: learning-rate schedule (see :class:`~symlight.training.module.SymmetricModule`).
        advantage: ``reward``: from the rewards the environment returns (the default);
            ``expected_reward``: from the arm means, simulation-only (module docstring).
        entropy: weight of the entropy bonus.
        grad_samples: pulls of each update the gradient is computed on, drawn uniformly from the
            ``n·B`` played (all of them when fewer); bounds the memory and time of an update.
        greedy_eval: validate and test with the arm of largest logit rather than a sampled arm.
        figure: log a figure of regret over time (policy and classic policies) at each
            validation, to loggers that take figures (TensorBoard).
        threads: torch's intra-op CPU threads while this module runs (restored afterwards);
            ``None`` leaves torch's setting alone.

    """

    def __init__(
        self,
        net: NetworkFactory,
        element_shape: tuple[int, ...] = (NUM_FEATURES,),
        rep_out: str = "1x1",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        schedule: Literal["constant", "onecycle", "cosine"] = "constant",
        advantage: Literal["reward", "expected_reward"] = "reward",
        entropy: float = 0.01,
        grad_samples: int = 8192,
        greedy_eval: bool = True,
        figure: bool = True,
        threads: int | None = 1,
    ) -> None:
        if tuple(element_shape) != (NUM_FEATURES,) or Rep.parse(rep_out) != Rep(1, order=1):
            raise ValueError(
                f"BanditPolicyGradient needs element_shape=({NUM_FEATURES},) and rep_out=1x1 (one "
                f"logit per arm); got {tuple(element_shape)} and {rep_out}: train it with "
                "BanditDataModule"
            )
        if grad_samples < 1:
            raise ValueError(f"grad_samples must be at least 1, got {grad_samples}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        if entropy < 0:
            raise ValueError(f"entropy must be >= 0, got {entropy}")
        super().__init__(
            net, element_shape=tuple(element_shape), rep_out=rep_out, lr=lr,
            weight_decay=weight_decay, schedule=schedule,
        )  # fmt: skip
        self._envs: dict[tuple, Any] = {}  # vector envs by size and device
        self._classic_figures: dict[tuple, dict] = {}  # of the classic policies, by cell
        self._curves: dict[str, list] = {}  # regret over time, by stage
        self._saved_threads: int | None = None

    @property
    def prior(self) -> Prior:
        """The prior of the task being played (uniform when no task is attached)."""
        return getattr(getattr(attached_trainer(self), "datamodule", None), "prior", UNIFORM)

    def policy(self, greedy: bool | None = None) -> PolicyFunction:
        """The network as a batched policy (greedy as in ``greedy_eval`` by default)."""
        greedy = self.hparams.greedy_eval if greedy is None else greedy
        return PolicyFunction(self.net, self.prior, greedy)

    def env(self, k: int, horizon: int, num_envs: int):
        """The task's vector env for these sizes on this module's device (built once)."""
        key = (k, horizon, num_envs, self.device)
        if key not in self._envs:
            self._envs[key] = self.task.make_env(k, horizon, num_envs, self.device)
        return self._envs[key]

    # -- one update ---------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, int], batch_idx: int) -> Tensor:
        k, horizon, num_envs = int(batch["k"]), int(batch["horizon"]), int(batch["num_envs"])
        seed = stream_seed(self.task.seed, 1 + self.global_rank + 64 * self.global_step)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        env = self.env(k, horizon, num_envs)
        episodes = play(self.policy(greedy=False), env, seed, generator)
        rewards = episodes.rewards
        if self.hparams.advantage == "expected_reward":  # simulation only: the env's hidden means
            rewards = -pseudo_regret(env.means, episodes.actions).float()
        chosen = torch.randperm(horizon * num_envs, generator=generator, device=self.device)
        chosen = chosen[: self.hparams.grad_samples]
        steps = (chosen // num_envs, chosen % num_envs)  # (step, episode) pairs
        adv = advantages(rewards_to_go(rewards))[steps]
        logits = self.net(self._features(episodes, steps)).squeeze(-1)
        logits = sampling_logits(logits, episodes.pulls[steps])  # the untried arms: one choice
        loss, entropy = policy_loss(logits, episodes.actions[steps], adv, self.hparams.entropy)
        self.log("train/loss", loss, prog_bar=True, batch_size=num_envs)
        self.log("train/entropy", entropy, batch_size=num_envs)
        self.log(f"train/reward@k={k},n={horizon}", episodes.rewards.sum(0).mean(),
                 batch_size=num_envs)  # fmt: skip
        return loss

    def _features(self, episodes: Episodes, steps: Tensor) -> Tensor:
        obs = episodes.observation(steps)
        dtype = next(self.net.parameters()).dtype
        return arm_features(obs["pulls"], obs["successes"], obs["steps_left"], self.prior, dtype)

    # -- evaluation (:mod:`.evaluation`) ------------------------------------------------------
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return evaluation.step(self, batch, "val", dataloader_idx)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return evaluation.step(self, batch, "test", dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        evaluation.epoch_end(self, "val")

    def on_test_epoch_end(self) -> None:
        evaluation.epoch_end(self, "test")

    # -- housekeeping -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.hparams.threads is not None and self.device.type == "cpu":
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.hparams.threads)
        super().setup(stage)
        if self.hparams.advantage == "expected_reward" and self.task.env_id != ENV_ID:
            raise ValueError(
                f"advantage=expected_reward reads the arm means a simulator hides: it trains on "
                f"{ENV_ID} only, not {self.task.env_id}; use advantage=reward"
            )
        evaluation.setup(self)

    def teardown(self, stage: str) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        prior = self.prior
        checkpoint[CHECKPOINT_KEY] = {
            "num_features": NUM_FEATURES, "prior": [prior.alpha, prior.beta]
        }  # fmt: skip
