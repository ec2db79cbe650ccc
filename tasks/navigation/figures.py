"""A picture of navigation episodes: the agents' paths, the landmarks and the coverage radius."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from .env import AGENT_SIZE, default_arena

__all__ = ["trajectory_figure"]

PlayResult = Mapping[str, Tensor]


def trajectory_figure(
    results: PlayResult | Mapping[str, PlayResult],
    episodes: int = 3,
    radius: float = 0.1,
    arena: float | None = None,
):
    """A panel per episode: each agent's path, the landmarks and the circle that covers each.

    ``results``: what :func:`~symlight.tasks.navigation.evaluation.play` returns with
    ``trajectory=True`` (``agent_pos`` ``(T + 1, E, N, 2)``, ``landmark_pos`` ``(E, M, 2)``, and
    ``coverage`` when present, shown in the titles), or a mapping from a row's title (e.g.
    ``"N = 3"``) to such a result, one row each. The first ``episodes`` episodes are drawn. In
    each panel: the arena's square (half-width ``arena``, by default the environment's default
    for that number of agents) in grey; each landmark a black cross inside a dashed circle of
    ``radius`` (coverage counts a landmark with an agent inside it); each agent's path a line of
    its own colour from a small dot at its start to a disc of the agent's size at its end.

    Returns a ``matplotlib.figure.Figure`` (not attached to pyplot), sized as the bandit's
    figure for TensorBoard's image card: 2.6 inches a panel and 16-point titles; log it with
    ``logger.experiment.add_figure(tag, figure, step)``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    rows = {"": results} if "agent_pos" in results else dict(results)
    cols = max(1, min(episodes, min(r["agent_pos"].shape[1] for r in rows.values())))
    fig = Figure(figsize=(2.6 * cols, 2.75 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for row, (title, result) in zip(axes, rows.items()):
        paths = result["agent_pos"].detach().float().cpu()
        marks = result["landmark_pos"].detach().float().cpu()
        agents = paths.shape[2]
        half = default_arena(agents) if arena is None else arena
        colours = [_colour(i, agents) for i in range(agents)]
        for e, ax in enumerate(row):
            ax.add_patch(Rectangle((-half, -half), 2 * half, 2 * half, fill=False,
                                   edgecolor="0.6", linewidth=1.0))  # fmt: skip
            for x, y in marks[e].tolist():
                ax.add_patch(Circle((x, y), radius, fill=False, linestyle="--", linewidth=0.8,
                                    edgecolor="black"))  # fmt: skip
            ax.scatter(marks[e, :, 0], marks[e, :, 1], marker="x", color="black", s=30, zorder=3)
            for i in range(agents):
                path = paths[:, e, i]
                ax.plot(path[:, 0], path[:, 1], color=colours[i], linewidth=1.2, alpha=0.9)
                ax.plot(path[0, 0], path[0, 1], "o", color=colours[i], markersize=2.5)
                end = tuple(path[-1].tolist())
                ax.add_patch(Circle(end, AGENT_SIZE, color=colours[i], alpha=0.35, linewidth=0))
            reach = max(half, float(paths[:, e].abs().max()), float(marks[e].abs().max()))
            ax.set_xlim(-reach - 0.2, reach + 0.2)
            ax.set_ylim(-reach - 0.2, reach + 0.2)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"{title}, " if title else ""
            if "coverage" in result:
                label += f"coverage {float(result['coverage'][e]):.2f}"
            ax.set_title(label or f"episode {e}", fontsize=16 if len(label) < 22 else 13)
    return fig


def _colour(i: int, agents: int) -> tuple[float, ...]:
    """Agent ``i``'s colour: tab10 for up to 10 agents, else evenly spaced on a hue circle."""
    from matplotlib import colormaps

    if agents <= 10:
        return colormaps["tab10"](i)
    return colormaps["hsv"](i / agents)
