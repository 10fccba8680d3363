"""Fig. 6 of Pascanu et al. (2013): the error surface of one recurrent unit, with gradient
descent paths with and without norm clipping.

x_t = w sigmoid(x_{t-1}) + b, x_0 = 0.5, E_50 = (sigmoid(x_50) - 0.7)^2 over a (w, b) grid,
log scale (`pascanu_jax.analysis.error_surface`). From each start, plain gradient descent (solid)
and gradient descent with `clip_by_pascanu_norm` (dashed) run through optax. The default
starts, rate and threshold were found by computing the paths: they walk into the wall,
where the plain step is thrown across the valley and the clipped step stays bounded.

    python scripts/error_surface.py --out docs/figures
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from pascanu_jax.analysis import dynamics
from pascanu_jax.analysis.error_surface import FIG6, descent, error_surface_grid, one_unit_error
from pascanu_jax.cli.common import add_output_arguments
from pascanu_jax.outputs.figures import save_figure

DEFAULT_STARTS = ((4.5, -2.5), (5.0, -2.0), (4.5, -3.0))
PATH_COLORS = ("tab:red", "tab:orange", "magenta", "tab:cyan", "white", "tab:pink")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--w-range", type=float, nargs=2, default=(3.0, 9.5), metavar=("LO", "HI"))
    parser.add_argument("--b-range", type=float, nargs=2, default=(-4.0, 5.5), metavar=("LO", "HI"))
    parser.add_argument("--grid", type=int, default=400, help="grid points per axis (>= 10)")
    parser.add_argument(
        "--start",
        type=float,
        nargs=2,
        action="append",
        metavar=("W", "B"),
        help=f"a starting point (repeat for more, at most {len(PATH_COLORS)}; default: "
        f"{'; '.join(f'{w:g} {b:g}' for w, b in DEFAULT_STARTS)})",
    )
    parser.add_argument("--lr", type=float, default=0.1, help="gradient descent step size (> 0)")
    parser.add_argument("--threshold", type=float, default=1.0, help="clipping threshold (> 0)")
    parser.add_argument("--updates", type=int, default=200, help="updates per path (>= 1)")
    add_output_arguments(parser, "docs/figures")
    args = parser.parse_args(argv)
    for name in ("w_range", "b_range"):
        lo, hi = getattr(args, name)
        if not lo < hi:
            parser.error(f"--{name.replace('_', '-')} needs LO < HI (got {lo:g} {hi:g})")
    if args.grid < 10:
        parser.error(f"--grid must be >= 10 (got {args.grid})")
    if not (args.lr > 0 and args.threshold > 0):
        parser.error(f"--lr and --threshold must be > 0 (got {args.lr:g}, {args.threshold:g})")
    if args.updates < 1:
        parser.error(f"--updates must be >= 1 (got {args.updates})")
    if args.start is None:
        args.start = [list(s) for s in DEFAULT_STARTS]
    if len(args.start) > len(PATH_COLORS):
        parser.error(f"at most {len(PATH_COLORS)} --start points (got {len(args.start)})")
    if not np.all(np.isfinite(args.start)):
        parser.error(f"--start W B takes finite numbers (got {args.start})")
    return args


def draw_map(ax, ws, bs, paths, norm, title, labels=()):
    """E over the grid (log bands), the computed wall line, and the descent paths."""
    surface = np.asarray(error_surface_grid(ws, bs))
    extent = (ws[0], ws[-1], bs[0], bs[-1])
    mesh = ax.imshow(surface, origin="lower", extent=extent, aspect="auto", norm=norm)
    # x_0 sits on the basin boundary (the unstable fixed point) along b = x_0 - w sigmoid(x_0),
    # where w sigmoid'(x_0) > 1: the wall of E_inf; E_50's wall lies along it.
    w_wall = ws[ws * dynamics.map_slope(FIG6.x0, 1.0) > 1.0]
    b_wall = FIG6.x0 - dynamics.one_unit_map(FIG6.x0, w_wall, 0.0)
    label = r"$x_0$ on the basin boundary (wall of $E_\infty$)"
    ax.plot(w_wall, b_wall, ":", color="k", lw=1.2, label=label)
    for i, color in enumerate(PATH_COLORS[: paths.points.shape[1]]):
        for c, style in ((0, "-"), (1, "--")):
            p = np.asarray(paths.points[c, i])
            ax.plot(p[:, 0], p[:, 1], style, color=color, lw=1.4)
        ax.plot(*np.asarray(paths.points[0, i, 0]), "o", mfc=color, mec="k", ms=7)
        ax.plot(*np.asarray(paths.points[0, i, -1]), "X", mfc=color, mec="k", ms=7)
    for color, text in zip(PATH_COLORS, labels, strict=False):
        ax.plot([], [], "o", mfc=color, mec="k", label=text)
    ax.plot([], [], "-", color="0.3", label="gradient descent (end: X)")
    ax.plot([], [], "--", color="0.3", label="with norm clipping")
    ax.set(xlim=(ws[0], ws[-1]), ylim=(bs[0], bs[-1]), xlabel="w", ylabel="b", title=title)
    return mesh


def draw_wall(ax, w, b_hit, grid):
    """E and |grad E| along b at fixed w, through the wall near (w, b_hit)."""
    bs = np.linspace(b_hit - 0.05, b_hit + 0.05, 10 * grid, dtype=np.float32)
    error, (g_w, g_b) = jax.vmap(jax.value_and_grad(one_unit_error, (0, 1)), (None, 0))(w, bs)
    ax.plot(bs, np.asarray(error), color="tab:blue", label=r"$E_{50}$")
    ax.plot(bs, np.hypot(g_w, g_b), color="tab:red", label=r"$|\nabla E_{50}|$")
    ax.axvline(b_hit, color="0.4", ls="--", lw=1, label="first path: last point before the jump")
    ax.set(xlabel=f"b   (w = {w:.3f})", yscale="log", xlim=(bs[0], bs[-1]))
    ax.set_title("cross-section through the wall")
    ax.legend(fontsize=8, loc="lower left")


def draw(args: argparse.Namespace):
    starts = np.asarray(args.start, np.float32)
    paths = descent(
        starts,
        thresholds=np.array([np.inf, args.threshold]),
        learning_rate=args.lr,
        updates=args.updates,
    )
    steps = np.linalg.norm(np.asarray(paths.steps), axis=-1)  # (2, S, updates)
    jumps = steps.max(-1)
    labels = [
        f"({w:g}, {b:g}): largest step {jumps[0, i]:.3g} plain, {jumps[1, i]:.3g} clipped"
        for i, (w, b) in enumerate(starts)
    ]
    # Log-spaced bands, three per decade: they read as contour levels (and keep the PNG small).
    norm = BoundaryNorm(np.logspace(-6, 0, 19), ncolors=256, extend="min")
    fig = Figure(figsize=(17, 5.2), layout="constrained")
    ax_map, ax_zoom, ax_wall = fig.subplots(1, 3, width_ratios=(1, 1, 0.9))
    ws = np.linspace(*args.w_range, args.grid, dtype=np.float32)
    bs = np.linspace(*args.b_range, args.grid, dtype=np.float32)
    mesh = draw_map(ax_map, ws, bs, paths, norm, r"$E_{50}$ over $(w, b)$", labels)
    ax_map.legend(loc="upper left", fontsize=7)
    # The zoom frames the clipped paths, which stay near the wall.
    clipped = np.asarray(paths.points[1]).reshape(-1, 2)
    lo, hi = clipped.min(0), clipped.max(0)
    pad = 0.15 * (hi - lo) + 0.02
    zw = np.linspace(lo[0] - pad[0], hi[0] + pad[0], args.grid, dtype=np.float32)
    zb = np.linspace(lo[1] - pad[1], hi[1] + pad[1], args.grid, dtype=np.float32)
    draw_map(ax_zoom, zw, zb, paths, norm, "zoom on the wall (clipped paths)")
    colorbar = fig.colorbar(mesh, ax=[ax_map, ax_zoom], ticks=np.logspace(-6, 0, 7))
    colorbar.set_label(r"$E_{50} = (\sigma(x_{50}) - 0.7)^2$")
    colorbar.ax.set_yticklabels([f"$10^{{{e}}}$" for e in range(-6, 1)])
    hit = np.asarray(paths.points[0, 0, steps[0, 0].argmax()])
    draw_wall(ax_wall, float(hit[0]), float(hit[1]), args.grid)
    fig.suptitle(
        rf"Fig. 6: one unit, $x_t = w\,\sigma(x_{{t-1}}) + b$, $x_0 = {FIG6.x0:g}$;  "
        f"gradient descent, rate {args.lr:g}, {args.updates} updates, "
        f"clipping threshold {args.threshold:g}"
    )
    return fig, paths, jumps


def main(argv=None) -> None:
    args = parse_args(argv)
    fig, paths, jumps = draw(args)
    for path in save_figure(fig, args.out, "fig6_error_surface", svg=args.svg):
        print(f"wrote {path}")
    for i, (w, b) in enumerate(args.start):
        print(
            f"start ({w:g}, {b:g}): largest step plain {jumps[0, i]:.4g}, clipped "
            f"{jumps[1, i]:.4g}; final E plain {float(paths.errors[0, i, -1]):.3g}, "
            f"clipped {float(paths.errors[1, i, -1]):.3g}"
        )


if __name__ == "__main__":
    main()
