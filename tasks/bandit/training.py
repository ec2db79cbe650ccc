"""BanditPolicyGradient: trains an equivariant policy over arms by REINFORCE on the batched env.

Each training step plays one batch of episodes (``k`` arms, ``horizon`` pulls, ``num_envs``
episodes, as the :class:`~.task.BanditDataModule` deals them) on the batched environment without
gradients, then computes the policy gradient on a random subset of the steps played:

- the network sees the per-arm features of every state (:mod:`.features`) and returns one logit
  per arm; actions are sampled from the softmax;
- the return-to-go of a step counts the expected reward of each later pull minus the instance's
  best mean (minus the pseudo-regret to go), the baseline is the batch mean at the same step, and
  advantages are normalised (:func:`.gradient.advantages`);
- the loss is REINFORCE with an entropy bonus (:func:`.gradient.reinforce_loss`).

Validation and test play the policy on the task's fixed instances (greedily by default: the
arm with the largest logit) and log regret beside the classic policies' figures on the same
instances, plus a figure of regret over time to TensorBoard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from symlight.core.rep import Rep
from symlight.training import NetworkFactory, SymmetricModule, attached_trainer, metric_key

from .env import BernoulliBanditVectorEnv
from .evaluate import rollout
from .features import NUM_FEATURES, arm_features
from .gradient import advantages, reinforce_loss

__all__ = ["BanditPolicyGradient", "PolicyFunction", "CHECKPOINT_KEY"]

CHECKPOINT_KEY = "symlight_bandit_policy"
"""Key under which a bandit policy checkpoint records what its network expects."""

Stage = Literal["val", "test"]


class PolicyFunction:
    """A batched policy ``policy(obs, generator) -> (B,) actions`` from a network over arm features.

    ``obs`` is the batched environment's observation (``pulls``, ``successes`` ``(B, k)``,
    ``steps_left`` ``(B,)``). Greedy takes the arm with the largest logit (the lowest index among
    ties); otherwise an arm is sampled from the softmax with ``generator``. Equivariant to S_k.
    """

    def __init__(
        self, net: nn.Module, prior: tuple[float, float] = (1.0, 1.0), greedy: bool = True
    ) -> None:
        self.net, self.prior, self.greedy = net, prior, greedy

    def logits(self, obs: Mapping[str, Tensor]) -> Tensor:
        dtype = next(self.net.parameters()).dtype
        x = arm_features(obs["pulls"], obs["successes"], obs["steps_left"], self.prior, dtype)
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def __call__(
        self, obs: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> Tensor:
        logits = self.logits(obs)
        if self.greedy:
            return logits.argmax(-1)
        probs = torch.softmax(logits.float(), -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class BanditPolicyGradient(SymmetricModule):
    """REINFORCE with a per-step baseline and an entropy bonus, for a policy over bandit arms.

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
        entropy: weight of the entropy bonus.
        grad_steps: steps of each episode batch the gradient is computed on (a uniform random
            subset of the horizon; all steps when the horizon is shorter); bounds memory and time.
        normalise_advantages: divide advantages by their standard deviation over the batch.
        greedy_eval: validate and test with the arm of largest logit rather than a sampled arm.
        figure: log a figure of regret over time (policy and classic policies) at each
            validation, to loggers that take figures (TensorBoard).
        threads: torch's intra-op CPU threads while this module runs (restored afterwards):
            the rollout is thousands of small operations, which one thread runs several times
            faster than two on a busy machine; ``None`` leaves torch's setting alone.

    """

    def __init__(
        self,
        net: NetworkFactory,
        element_shape: tuple[int, ...] = (NUM_FEATURES,),
        rep_out: str = "1x1",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        schedule: Literal["constant", "onecycle", "cosine"] = "constant",
        entropy: float = 0.01,
        grad_steps: int = 64,
        normalise_advantages: bool = True,
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
        if grad_steps < 1:
            raise ValueError(f"grad_steps must be at least 1, got {grad_steps}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        if entropy < 0:
            raise ValueError(f"entropy must be >= 0, got {entropy}")
        super().__init__(
            net,
            element_shape=tuple(element_shape),
            rep_out=rep_out,
            lr=lr,
            weight_decay=weight_decay,
            schedule=schedule,
        )
        self._curves: dict[str, list[tuple[str, Any]]] = {}
        self._saved_threads: int | None = None

    # -- the task -----------------------------------------------------------------------------
    @property
    def prior(self) -> tuple[float, float]:
        task = getattr(attached_trainer(self), "datamodule", None)
        return getattr(task, "prior", (1.0, 1.0))

    def policy(self, greedy: bool | None = None) -> PolicyFunction:
        """The network as a batched policy (greedy as in ``greedy_eval`` by default)."""
        greedy = self.hparams.greedy_eval if greedy is None else greedy
        return PolicyFunction(self.net, self.prior, greedy)

    def setup(self, stage: str) -> None:
        if self.hparams.threads is not None and self.device.type == "cpu":
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.hparams.threads)
        super().setup(stage)
        task = self.task
        for stage_name in ("val", "test"):  # the pooled metrics over several cells
            for name, metric in task.metrics().items():
                if metric_key(stage_name, name, "") not in self.metrics:
                    self.metrics[metric_key(stage_name, name, "")] = metric.clone()

    def teardown(self, stage: str) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    # -- training -----------------------------------------------------------------------------
    def play(self, k: int, horizon: int, num_envs: int, seed: int) -> dict[str, Tensor]:
        """Play one batch of episodes with the sampling policy, without gradients.

        Returns the features of every state ``(T, B, k, F)``, the actions ``(T, B)``, the means
        of the pulled arms ``(T, B)`` and the instances' best means ``(B,)``.
        """
        alpha, beta = self.prior
        env = BernoulliBanditVectorEnv(
            num_envs,
            k,
            horizon,
            "uniform" if self.prior == (1.0, 1.0) else "beta",
            alpha,
            beta,
            device=self.device,
        )
        obs, info = env.reset(seed=seed)
        means = info["means"].to(self.device, torch.float32)
        generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        dtype = next(self.net.parameters()).dtype
        feats = torch.empty(horizon, num_envs, k, NUM_FEATURES, dtype=dtype, device=self.device)
        actions = torch.empty(horizon, num_envs, dtype=torch.long, device=self.device)
        with torch.no_grad():
            for t in range(horizon):
                feats[t] = arm_features(
                    obs["pulls"], obs["successes"], obs["steps_left"], self.prior, dtype
                )
                logits = self.net(feats[t]).squeeze(-1)
                probs = torch.softmax(logits.float(), -1)
                actions[t] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                obs, *_ = env.step(actions[t])
        pulled = means.gather(1, actions.T).T  # (T, B)
        return {"x": feats, "actions": actions, "pulled": pulled, "best": means.max(1).values}

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        k, horizon = int(batch["k"]), int(batch["horizon"])
        num_envs, seed = int(batch["num_envs"]), int(batch["seed"])
        episodes = self.play(k, horizon, num_envs, seed)
        adv = advantages(episodes["pulled"], episodes["best"], self.hparams.normalise_advantages)
        steps = self.hparams.grad_steps
        if horizon > steps:
            gen = torch.Generator().manual_seed(seed + 2)
            chosen = torch.randperm(horizon, generator=gen)[:steps].to(self.device)
        else:
            chosen = torch.arange(horizon, device=self.device)
        x = episodes["x"][chosen].flatten(0, 1)  # (S*B, k, F)
        logits = self.net(x).squeeze(-1)
        loss, entropy = reinforce_loss(
            logits,
            episodes["actions"][chosen].flatten(),
            adv[chosen].flatten(),
            self.hparams.entropy,
        )
        regret = (episodes["best"][None] - episodes["pulled"]).sum(0)
        self.log("train/loss", loss, prog_bar=True, batch_size=num_envs)
        self.log(f"train/regret@k={k},n={horizon}", regret.mean(), batch_size=num_envs)
        self.log("train/entropy", entropy, batch_size=num_envs)
        return loss

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, batch: Mapping[str, Any], stage: Stage, dataloader_idx: int) -> Tensor:
        task = self.task
        suffix = task.val_names[dataloader_idx]
        means, horizon = batch["means"], int(batch["horizon"])
        generator = torch.Generator(device=means.device).manual_seed(int(batch["seed"]))
        run = rollout(self.policy(), means, horizon, generator)
        reward = run["total_reward"].to(means.dtype)
        values = {
            "regret": batch["best"] - reward,
            "pseudo_regret": run["pseudo_regret"].sum(1).to(means.dtype),
            "reward": reward,
            **{f"regret_{b}": batch[f"regret_{b}"] for b in task.baselines},
        }
        self.update_metrics(values, stage, suffix)
        if suffix:  # several cells: "val/regret" etc. pool them, logged at the epoch end
            for name, value in values.items():
                self.metrics[metric_key(stage, name, "")].update(value)
        curves = {"policy": run["pseudo_regret"].float().mean(0).cumsum(0).cpu()}
        curves.update({b: batch[f"curve_{b}"].float().cpu() for b in task.baselines})
        self._curves.setdefault(stage, []).append((suffix or "", curves))
        return values["regret"].mean()

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._evaluate(batch, "val", dataloader_idx)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0):
        return self._evaluate(batch, "test", dataloader_idx)

    def on_validation_epoch_start(self) -> None:
        self._curves.pop("val", None)

    def on_validation_epoch_end(self) -> None:
        self._log_pooled("val")
        self._log_figure("val")

    def on_test_epoch_end(self) -> None:
        self._log_pooled("test")
        self._log_figure("test")

    def _log_pooled(self, stage: Stage) -> None:
        """With several cells, log each metric pooled over all of them (``val/regret``)."""
        if len(self.task.val_names) < 2:
            return
        for name in self.task.metrics():
            metric = self.metrics[metric_key(stage, name, "")]
            if metric.update_called:
                self.log(f"{stage}/{name}", metric.compute(), prog_bar=name == "regret")
            with torch.inference_mode(False):  # fresh states must not be inference tensors
                metric.reset()

    def _log_figure(self, stage: Stage) -> None:
        curves = self._curves.pop(stage, [])
        if not curves or not self.hparams.figure or self.trainer.sanity_checking:
            return
        if self.trainer.global_rank != 0:
            return
        experiment = getattr(self.logger, "experiment", None) if self.logger else None
        if not hasattr(experiment, "add_figure"):
            return
        from .plots import regret_figure

        experiment.add_figure(f"{stage}/regret_over_time", regret_figure(curves), self.global_step)

    # -- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {"num_features": NUM_FEATURES, "prior": list(self.prior)}
