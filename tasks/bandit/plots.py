"""Figure of regret over time: the learned policy against the classic policies, one panel per cell.

Sized for TensorBoard's image card: small panels, 13-point text, one legend for all panels below
them. The y axis stops a little above the highest curve but the random policy's, which would
otherwise flatten the others (its line runs off the top).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

__all__ = ["regret_figure"]

STYLES = {"policy": {"linewidth": 2.8, "color": "black", "zorder": 3}}


def regret_figure(cells: Sequence[tuple[str, Mapping[str, Tensor]]]):
    """One panel per ``(title, {policy name: mean cumulative regret (T,)})``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(cells), 3)
    rows = (len(cells) + cols - 1) // cols
    height = 2.5 * rows + 0.45  # inches: the panels and the legend's row
    with plt.rc_context({"font.size": 13, "axes.titlesize": 13}):
        fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, height), squeeze=False)
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
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
                   handlelength=1.2, columnspacing=1.0, borderaxespad=0.2)  # fmt: skip
        fig.tight_layout(rect=(0, 0.4 / height, 1, 1), pad=0.3)
    return fig
