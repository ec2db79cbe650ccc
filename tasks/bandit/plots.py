"""Figure of regret over time: the learned policy against the classic policies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

__all__ = ["regret_figure"]


def regret_figure(cells: Sequence[tuple[str, Mapping[str, Tensor]]]):
    """One panel per ``(title, {policy name: mean cumulative pseudo-regret (T,)})``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(cells), 3)
    rows = (len(cells) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, cells):
        for name, curve in curves.items():
            style = {"linewidth": 2.5, "color": "black"} if name == "policy" else {"alpha": 0.8}
            ax.plot(range(1, len(curve) + 1), curve.numpy(), label=name, **style)
        ax.set_title(title.lstrip("@") or "regret over time")
        ax.set_xlabel("step")
        ax.set_ylabel("cumulative pseudo-regret")
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
