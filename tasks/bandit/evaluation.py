"""Validation and test of a bandit policy: every policy plays the same instances of the task's env.

For each evaluation cell the learned policy (greedy by default) and the classic policies play the
task's vector environment reset with the cell's seed, so they meet the same instances and, on
``symlight/BernoulliBandit-v0``, the same reward draws. The classic policies are played once per
cell and their figures kept. Logged per cell as ``val/regret@k=5,n=100``, and over all cells as
``val/regret``:

- ``regret``: ``n·E[max p] − total reward`` (the RL² table's measure), ``reward``, and the
  classic policies' ``regret_<name>``;
- ``pseudo_regret``: ``Σ_t (max p − p_{a_t})``, where the simulator's means are known
  (``symlight/BernoulliBandit-v0``), and a figure of it over time, the policy against the classic
  policies, one panel per cell (:func:`regret_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from symlight.training import metric_key

from .env import BernoulliBanditVectorEnv
from .play import Episodes, play, pseudo_regret
from .policies import classic_policies

__all__ = ["epoch_end", "regret_figure", "setup", "step"]

Stage = Literal["val", "test"]


def setup(module) -> None:
    """Add the metrics pooled over all cells (``val/regret``) to the module's per-cell ones."""
    for stage in ("val", "test"):
        for name, metric in module.task.metrics().items():
            if metric_key(stage, name, "") not in module.metrics:
                module.metrics[metric_key(stage, name, "")] = metric.clone()


def _figures(episodes: Episodes, means: Tensor | None, horizon: int, best: float) -> dict:
    """Per instance: regret, reward and (with the means) pseudo-regret; and a curve over time."""
    reward = episodes.rewards.double().sum(0)
    values = {"regret": horizon * best - reward, "reward": reward}
    if means is None:
        steps = torch.arange(1, horizon + 1, device=reward.device, dtype=torch.float64)
        curve = steps * best - episodes.rewards.double().mean(1).cumsum(0)
    else:
        per_step = pseudo_regret(means, episodes.actions)
        values["pseudo_regret"] = per_step.sum(0)
        curve = per_step.mean(1).cumsum(0)
    return {"values": values, "curve": curve.float().cpu()}


def step(module, batch: Mapping[str, Any], stage: Stage, dataloader_idx: int) -> Tensor:
    """Play one evaluation cell with the module's policy and log its figures."""
    task = module.task
    suffix = task.val_names[dataloader_idx]
    k, horizon, seed = int(batch["k"]), int(batch["horizon"]), int(batch["seed"])
    env = module.env(k, horizon, int(batch["instances"]))
    best = task.prior.expected_best(k)

    def run(policy) -> dict:
        generator = torch.Generator(device=module.device).manual_seed(seed)
        episodes = play(policy, env, seed, generator)
        means = env.means if isinstance(env, BernoulliBanditVectorEnv) else None  # simulation
        return _figures(episodes, means, horizon, best)

    cache = module._classic_figures
    key = (stage, k, horizon, seed, int(batch["instances"]))
    if key not in cache:
        cache[key] = {name: run(policy) for name, policy in classic_policies(task.prior).items()}
    learned = run(module.policy())
    values = dict(learned["values"])
    values.update({f"regret_{name}": fig["values"]["regret"] for name, fig in cache[key].items()})
    values = {name: value.to(module.device, torch.float32) for name, value in values.items()}
    module.update_metrics(values, stage, suffix)
    if suffix:  # several cells: "val/regret" etc. pool them, logged at the epoch end
        for name, value in values.items():
            module.metrics[metric_key(stage, name, "")].update(value)
    curves = {"policy": learned["curve"], **{n: f["curve"] for n, f in cache[key].items()}}
    module._curves.setdefault(stage, []).append((suffix, curves))
    return values["regret"].mean()


def epoch_end(module, stage: Stage) -> None:
    """Log the metrics pooled over the cells and the figure of regret over time."""
    task = module.task
    if len(task.val_names) > 1:
        for name in task.metrics():
            metric = module.metrics[metric_key(stage, name, "")]
            if metric.update_called:
                module.log(f"{stage}/{name}", metric.compute(), prog_bar=name == "regret")
            with torch.inference_mode(False):  # fresh states must not be inference tensors
                metric.reset()
    curves = module._curves.pop(stage, [])
    trainer = module.trainer
    if not curves or not module.hparams.figure or trainer.sanity_checking:
        return
    experiment = getattr(module.logger, "experiment", None) if module.logger else None
    if trainer.global_rank != 0 or not hasattr(experiment, "add_figure"):
        return
    experiment.add_figure(f"{stage}/regret_over_time", regret_figure(curves), module.global_step)


# -- the figure -----------------------------------------------------------------------------------
STYLES = {"policy": {"linewidth": 2.8, "color": "black", "zorder": 3}}


def regret_figure(cells: Sequence[tuple[str, Mapping[str, Tensor]]]):
    """One panel per ``(title, {policy name: mean cumulative regret (T,)})``.

    Sized for TensorBoard's image card, which shows an image about 300 pixels wide: two
    columns of panels (about 520 pixels in all) and 16-point text, so the legend (one for all
    panels, below them) reads at about 11 pixels on the card. The y axis stops a little above the highest curve but the random policy's, which
    would otherwise flatten the others (its line runs off the top).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(cells), 2)
    rows = (len(cells) + cols - 1) // cols
    legend_rows = 2
    height = 2.2 * rows + 0.4 * legend_rows  # inches: the panels and the legend's rows
    text = {"font.size": 16, "axes.titlesize": 16, "xtick.labelsize": 13, "ytick.labelsize": 13}
    with plt.rc_context(text):
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, height), squeeze=False)
        for ax, (title, curves) in zip(axes.flat, cells):
            top = 0.0
            for name, curve in curves.items():
                values = curve.numpy()
                style = STYLES.get(name, {"linewidth": 1.6, "alpha": 0.85})
                ax.plot(range(1, len(values) + 1), values, label=name, **style)
                if name != "random":
                    top = max(top, float(values.max()))
            bottom = min(0.0, min(float(c.min()) for c in curves.values()))
            ax.set_ylim(bottom, 1.15 * top if top > 0 else None)
            ax.set_title(title.lstrip("@") or "regret over time")
        for ax in axes[-1]:
            ax.set_xlabel("pull")
        for ax in axes[:, 0]:
            ax.set_ylabel("regret so far")
        for ax in list(axes.flat)[len(cells) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=-(-len(labels) // legend_rows),
                   frameon=False, handlelength=1.0, columnspacing=0.6, borderaxespad=0.1,
                   fontsize=15)  # fmt: skip
        fig.tight_layout(rect=(0, 0.4 * legend_rows / height, 1, 1), pad=0.3)
    return fig
