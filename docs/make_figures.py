"""Draw the figures of the documentation: `python docs/make_figures.py` (needs matplotlib).

docs/figures/rssm.svg and docs/figures/rssm.png show the recurrent state-space model of
src/planet_torch/rssm.py unrolled over three steps t-1, t, t+1:

    h_t = f(h_{t-1}, s_{t-1}, a_{t-1})   deterministic belief (GRU), square boxes
    s_t ~ p(s_t | h_t)                   prior (transition), solid arrow h_t -> s_t
    s_t ~ q(s_t | h_t, e_t)              posterior (filter), dashed arrow o_t -> s_t
    o_t ~ p(o_t | h_t, s_t), r_t ~ p(r_t | h_t, s_t)   observation and reward models

Both files are committed; run the script again after changing it. The output is
reproducible (no dates or random ids in the SVG).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

FIGURES = Path(__file__).resolve().parent / "figures"

DETERMINISTIC = "#dbe7f5"
STOCHASTIC = "#ffffff"
OBSERVED = "#c9c9c9"
ACTION = "#f3e3c3"
POSTERIOR = "#c0392b"
PRIOR = "#1f4e8c"

COLUMN = 3.2  # horizontal distance between time steps
Y_ACTION, Y_BELIEF, Y_STATE, Y_DATA = 4.3, 3.2, 1.9, 0.45
RADIUS = 0.36


def _time(k: int) -> str:
    return {-1: "t-1", 0: "t", 1: "t+1"}[k]


def _next_time(k: int) -> str:
    return {-1: "t", 0: "t+1"}[k]


class Diagram:
    """Nodes drawn as patches, edges as arrows that stop at the node borders."""

    def __init__(self, ax: plt.Axes) -> None:
        self.ax = ax
        self.nodes: dict[str, tuple[float, float]] = {}

    def square(self, key: str, x: float, y: float, label: str, colour: str) -> None:
        self.ax.add_patch(FancyBboxPatch((x - RADIUS, y - RADIUS), 2 * RADIUS, 2 * RADIUS,
                                         boxstyle="round,pad=0,rounding_size=0.06",
                                         facecolor=colour, edgecolor="black", lw=1.3, zorder=3))
        self._label(key, x, y, label)

    def circle(self, key: str, x: float, y: float, label: str, colour: str) -> None:
        self.ax.add_patch(Circle((x, y), RADIUS, facecolor=colour, edgecolor="black", lw=1.3,
                                 zorder=3))
        self._label(key, x, y, label)

    def _label(self, key: str, x: float, y: float, label: str) -> None:
        self.nodes[key] = (x, y)
        self.ax.text(x, y, label, ha="center", va="center", fontsize=15, zorder=4)

    def arrow(self, start: str, end: str, colour: str = "black", style: str = "-",
              bend: float = 0.0, width: float = 1.4) -> None:
        """An arrow from border to border; `bend` curves it as matplotlib's arc3 does."""
        (x1, y1), (x2, y2) = self.nodes[start], self.nodes[end]
        # arc3's control point; the curve leaves and enters along the lines to it
        cx = (x1 + x2) / 2 + bend * (y2 - y1)
        cy = (y1 + y2) / 2 - bend * (x2 - x1)
        a = _towards((x1, y1), (cx, cy), RADIUS)
        b = _towards((x2, y2), (cx, cy), RADIUS)
        self.ax.add_patch(FancyArrowPatch(
            a, b, connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>", mutation_scale=16,
            color=colour, lw=width, linestyle=style, shrinkA=0, shrinkB=0, zorder=2))


def _towards(point: tuple[float, float], target: tuple[float, float], distance: float
             ) -> tuple[float, float]:
    """The point `distance` away from `point` in the direction of `target`."""
    dx, dy = target[0] - point[0], target[1] - point[1]
    norm = (dx * dx + dy * dy) ** 0.5
    return point[0] + distance * dx / norm, point[1] + distance * dy / norm


def draw_rssm() -> plt.Figure:
    """The RSSM over three steps, with the prior and the posterior of step t marked."""
    fig, ax = plt.subplots(figsize=(11, 6.4))
    ax.set_xlim(-COLUMN - 1.9, COLUMN + 2.3)
    ax.set_ylim(-0.6, 5.1)
    ax.set_aspect("equal")
    ax.axis("off")
    d = Diagram(ax)
    for k in (-1, 0, 1):
        x, t = k * COLUMN, _time(k)
        d.square(f"h{k}", x, Y_BELIEF, f"$h_{{{t}}}$", DETERMINISTIC)
        d.circle(f"s{k}", x, Y_STATE, f"$s_{{{t}}}$", STOCHASTIC)
        d.circle(f"o{k}", x - 0.55, Y_DATA, f"$o_{{{t}}}$", OBSERVED)
        d.circle(f"r{k}", x + 0.55, Y_DATA, f"$r_{{{t}}}$", OBSERVED)
        ax.text(x, -0.3, f"step {t}", ha="center", va="center", fontsize=12, color="#444444")
    for k in (-1, 0):
        x = (k + 0.5) * COLUMN
        d.circle(f"a{k}", x, Y_ACTION, f"$a_{{{_time(k)}}}$", ACTION)
    for k in (-1, 0, 1):
        # h_t = f(h_{t-1}, s_{t-1}, a_{t-1}): the deterministic path (GRU)
        if k < 1:
            d.arrow(f"h{k}", f"h{k + 1}", width=2.2)
            d.arrow(f"s{k}", f"h{k + 1}")
            d.arrow(f"a{k}", f"h{k + 1}")
        # prior p(s_t | h_t)
        d.arrow(f"h{k}", f"s{k}", colour=PRIOR, width=2.0)
        # observation and reward models p(o_t | h_t, s_t), p(r_t | h_t, s_t)
        d.arrow(f"s{k}", f"o{k}")
        d.arrow(f"s{k}", f"r{k}")
        d.arrow(f"h{k}", f"o{k}", bend=0.45)
        d.arrow(f"h{k}", f"r{k}", bend=-0.45)
        # posterior q(s_t | h_t, e_t), e_t = enc(o_t)
        d.arrow(f"o{k}", f"s{k}", colour=POSTERIOR, style="--", bend=-0.4, width=1.8)
    # incoming and outgoing edges beyond the drawn window
    for y in (Y_BELIEF,):
        ax.annotate("", xy=(-COLUMN - RADIUS, y), xytext=(-COLUMN - 1.3, y),
                    arrowprops={"arrowstyle": "-|>", "lw": 2.2, "color": "#888888"})
        ax.annotate("", xy=(COLUMN + 1.3, y), xytext=(COLUMN + RADIUS, y),
                    arrowprops={"arrowstyle": "-|>", "lw": 2.2, "color": "#888888"})
    ax.text(0.5 * COLUMN + 0.1, 3.55, r"$h_{t+1} = f(h_t, s_t, a_t)$", fontsize=11,
            ha="center", va="bottom")
    leader = {"arrowstyle": "-", "lw": 0.8, "shrinkA": 2, "shrinkB": 0}
    ax.annotate("prior\n" r"$p(s_t \mid h_t)$", xy=(0.03, 2.55), xytext=(1.45, 1.15),
                fontsize=11, color=PRIOR, ha="left", va="center",
                arrowprops={**leader, "color": PRIOR})
    ax.annotate("posterior\n" r"$q(s_t \mid h_t, e_t)$", xy=(-0.48, 1.25), xytext=(-1.1, 1.3),
                fontsize=11, color=POSTERIOR, ha="right", va="center",
                arrowprops={**leader, "color": POSTERIOR})
    ax.text(-COLUMN - 1.85, 5.0,
            "square: deterministic\ncircle: stochastic\ngrey: observed\n"
            "solid: generative model\ndashed: filtering posterior,\n"
            r"   $e_t = \mathrm{enc}(o_t)$",
            fontsize=10, ha="left", va="top", color="#333333",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#bbbbbb"})
    ax.set_title("Recurrent state-space model (RSSM), unrolled over time", fontsize=14)
    fig.tight_layout()
    return fig


def main() -> None:
    """Write every figure into docs/figures/."""
    FIGURES.mkdir(exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "planet-torch"
    fig = draw_rssm()
    fig.savefig(FIGURES / "rssm.svg", metadata={"Date": None})
    fig.savefig(FIGURES / "rssm.png", dpi=110, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
