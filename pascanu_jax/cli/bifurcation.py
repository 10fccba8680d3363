"""Fig. 3 of Pascanu et al. (2013): bifurcation diagram of one unit, x_t = w sigmoid(x_{t-1}) + b.

Computed, not sketched (`pascanu_jax.analysis.dynamics`): the fixed points x = w sigmoid(x) + b
against b, stable where |w sigmoid'(x)| < 1 (solid) and unstable otherwise (dashed: the
boundary between the two basins of attraction); the saddle-node bifurcations b1, b2
(filled circles); the shading shows which attractor the state reaches from each (b, x_0)
after --steps iterations, the arrows which way one iteration moves the state, and the
unfilled circle one crossing of the basin boundary.

    python scripts/bifurcation.py --out docs/figures
"""

from __future__ import annotations

import argparse

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from pascanu_jax.analysis import dynamics
from pascanu_jax.cli.common import add_output_arguments
from pascanu_jax.outputs.figures import save_figure


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--w", type=float, default=5.0, help="recurrent weight (> 4; paper: 5)")
    parser.add_argument("--b-min", type=float, help="left end of the b axis (default b2 - 1)")
    parser.add_argument("--b-max", type=float, help="right end of the b axis (default b1 + 1)")
    parser.add_argument("--grid", type=int, default=801, help="b values (and x_0 values) >= 10")
    parser.add_argument("--steps", type=int, default=500, help="iterations for the basins (>= 1)")
    add_output_arguments(parser, "docs/figures")
    args = parser.parse_args(argv)
    if not args.w > dynamics.MIN_BISTABLE_W:
        parser.error(
            f"--w must be > 4 (got {args.w}): only then does w sigmoid'(x) = 1 have solutions, "
            "so that two attractors and the bifurcations b1, b2 exist"
        )
    bif = dynamics.bifurcations(args.w)
    args.b_min = bif.b2 - 1.0 if args.b_min is None else args.b_min
    args.b_max = bif.b1 + 1.0 if args.b_max is None else args.b_max
    if not args.b_min < args.b_max:
        parser.error(f"need --b-min < --b-max (got {args.b_min} and {args.b_max})")
    if args.grid < 10:
        parser.error(f"--grid must be >= 10 (got {args.grid})")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1 (got {args.steps})")
    return args


def draw(args: argparse.Namespace):
    w = args.w
    bif = dynamics.bifurcations(w)
    bs = np.linspace(args.b_min, args.b_max, args.grid)
    branches = dynamics.fixed_point_branches(w, bs)
    x_lo, x_hi = dynamics.critical_states(w)
    finite = branches[np.isfinite(branches)]
    x_min, x_max = finite.min() - 0.5, finite.max() + 0.5

    fig = Figure(figsize=(8, 5.5))
    ax = fig.subplots()
    # Which attractor each (b, x_0) reaches: F is increasing, the attractors lie outside
    # [x_lo, x_hi], so the side of their midpoint tells them apart.
    x0 = np.linspace(x_min, x_max, args.grid)[:, None]
    reaches_upper = dynamics.iterate_map(x0, w, bs[None, :], args.steps) > 0.5 * (x_lo + x_hi)
    basins = ListedColormap(["#fde0c5", "#d6e6f5"])
    ax.pcolormesh(bs, x0[:, 0], reaches_upper.astype(float), cmap=basins, shading="nearest")
    # One iteration's direction of motion, F(x) - x, on a coarse grid.
    qb, qx = np.meshgrid(np.linspace(bs[0], bs[-1], 17)[1:-1], np.linspace(x_min, x_max, 13))
    move = np.sign(dynamics.one_unit_map(qx, w, qb) - qx)
    ax.quiver(qb, qx, 0 * move, move, color="0.55", width=0.003, scale=30, alpha=0.8)

    lower, unstable, upper = branches.T
    ax.plot(bs, lower, "-", color="k", lw=2.5, label="stable fixed point (attractor)")
    ax.plot(bs, upper, "-", color="k", lw=2.5)
    ax.plot(bs, unstable, "--", color="k", lw=1.5, label="unstable fixed point = basin boundary")
    label = f"bifurcations b1 = {bif.b1:.4f}, b2 = {bif.b2:.4f}"
    ax.plot([bif.b1, bif.b2], [bif.x1, bif.x2], "o", color="tab:red", ms=8, label=label)
    for b, name in ((bif.b1, "b1"), (bif.b2, "b2")):
        ax.axvline(b, color="tab:red", lw=0.8, ls=":")
        ax.annotate(name, (b, x_max), xytext=(3, -14), textcoords="offset points", color="tab:red")
    # A crossing of the basin boundary: two nearby starts, two attractors.
    b_mid = 0.5 * (bif.b1 + bif.b2)
    x_u = float(dynamics.basin_boundary(w, b_mid))
    label = "crossing the basin boundary"
    ax.plot([b_mid], [x_u], "o", mfc="white", mec="tab:purple", mew=2, ms=9, label=label)
    arrow = {"arrowstyle": "->", "color": "tab:purple", "lw": 1.5}
    for eps in (-0.05, 0.05):
        end = float(dynamics.iterate_map(x_u + eps, w, b_mid, args.steps))
        ax.annotate("", xy=(b_mid, end), xytext=(b_mid, x_u + eps), arrowprops=arrow)
    ax.set(xlim=(bs[0], bs[-1]), ylim=(x_min, x_max), xlabel="bias b")
    ax.set_ylabel(r"asymptotic state $x_\infty$")
    ax.set_title(
        rf"Fig. 3: one unit $x_t = w\,\sigma(x_{{t-1}}) + b$, w = {w:g}"
        "\nshading: basin of the upper (blue) / lower (orange) attractor",
        fontsize=11,
    )
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig, bif


def main(argv=None) -> None:
    args = parse_args(argv)
    fig, bif = draw(args)
    for path in save_figure(fig, args.out, "fig3_bifurcation", svg=args.svg):
        print(f"wrote {path}")
    print(
        f"w = {bif.w:g}: b1 = {bif.b1:.6f} (x = {bif.x1:.6f}), b2 = {bif.b2:.6f} (x = {bif.x2:.6f})"
    )


if __name__ == "__main__":
    main()
