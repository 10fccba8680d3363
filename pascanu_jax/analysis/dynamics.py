"""The one-unit recurrent map of Pascanu et al. (2013, §2.2, Fig. 3; eq. 8) as a dynamical
system:

    x_t = F(x_{t-1}),    F(x) = w sigmoid(x) + b.

A fixed point solves g(x) = F(x) - x = 0; it is stable when |F'(x)| = |w sigmoid'(x)| < 1.
Because 0 < sigmoid < 1, every fixed point lies in [b + min(w, 0), b + max(w, 0)].

For w > 4 the equation w sigmoid'(x) = 1 has two roots x_lo < x_hi (sigmoid' peaks at
1/4), so g is decreasing, increasing, decreasing on the three pieces they cut: each piece
holds at most one root, found by bisection on an exact bracket. The outer roots are stable
(|F'| < 1 there), the middle one unstable. F is increasing (w > 0), so it keeps the order
of states: a state started below the unstable fixed point stays below it and tends to the
lower attractor, one started above tends to the upper. The unstable fixed point *is* the
boundary between the two basins of attraction (the dashed line of Fig. 3).

The two saddle-node bifurcations (Doya, 1993) are where a stable and the unstable fixed
point merge, at x = x_lo and x = x_hi, so b = x - w sigmoid(x) there. Following the
paper's text, b1 is where the new (lower) attractor emerges as b decreases from +inf and
b2 < b1 where the upper attractor disappears; the system is bistable for b2 < b < b1.

For w <= 4 (and any w < 0) g is monotone and there is one fixed point; for w < -4 it can be
unstable and the state then oscillates (a period-doubling, outside the paper's analysis).

Host-side float64 numpy: the fixed points are exact to rounding, and these are analysis
tools, not part of a training step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Saddle-node bifurcations need a slope w sigmoid'(x) = 1 somewhere; sigmoid' <= 1/4.
MIN_BISTABLE_W = 4.0
_BISECTION_STEPS = 200  # far past the 52 halvings that exhaust float64


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """1 / (1 + exp(-x)) in float64, without overflow for large |x|.

    Examples:
      >>> from pascanu_jax.analysis.dynamics import sigmoid
      >>> sigmoid(np.array([0.0, 2.0])).round(4)
      array([0.5   , 0.8808])
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def one_unit_map(x: np.ndarray | float, w: float, b: np.ndarray | float) -> np.ndarray:
    """F(x) = w sigmoid(x) + b, eq. (8) without input.

    Examples:
      >>> float(pj.one_unit_map(0.0, 5.0, -2.5))  # 0 is the unstable fixed point at w = 5, b = -2.5
      0.0
    """
    return w * sigmoid(x) + b


def map_slope(x: np.ndarray | float, w: float) -> np.ndarray:
    """F'(x) = w sigmoid(x) (1 - sigmoid(x)).

    Examples:
      >>> from pascanu_jax.analysis.dynamics import map_slope
      >>> float(map_slope(0.0, 5.0))  # w sigma'(0) = 5 / 4
      1.25
    """
    s = sigmoid(x)
    return w * s * (1.0 - s)


def is_stable(x: np.ndarray | float, w: float) -> np.ndarray:
    """True where a fixed point x of F is stable: |F'(x)| < 1.

    Examples:
      >>> pj.is_stable(pj.fixed_points(5.0, -2.5), 5.0)
      array([ True, False,  True])
    """
    return np.abs(map_slope(x, w)) < 1.0


def iterate_map(x0: np.ndarray | float, w: float, b: np.ndarray | float, steps: int) -> np.ndarray:
    """x_steps = F^steps(x0), elementwise over broadcast x0 and b.

    Examples:
      >>> pj.iterate_map(np.array([-0.1, 0.1]), 5.0, -2.5, 100).round(3)  # either side of it
      array([-1.776,  1.776])
    """
    x = np.asarray(x0, dtype=np.float64) + np.zeros_like(np.asarray(b, dtype=np.float64))
    for _ in range(steps):
        x = one_unit_map(x, w, b)
    return x


def critical_states(w: float) -> tuple[float, float] | None:
    """(x_lo, x_hi) with w sigmoid'(x) = 1, or None when w <= 4 (no such x).

    sigmoid'(x) = s (1 - s) = 1/w gives s = (1 -+ sqrt(1 - 4/w)) / 2, x = log(s / (1 - s)).

    Examples:
      >>> from pascanu_jax.analysis.dynamics import critical_states
      >>> tuple(round(x, 4) for x in critical_states(5.0))  # w sigma'(x) = 1
      (-0.9624, 0.9624)
    """
    if not w > MIN_BISTABLE_W:
        return None
    root = np.sqrt(1.0 - 4.0 / w)
    s_lo, s_hi = (1.0 - root) / 2.0, (1.0 + root) / 2.0
    return float(np.log(s_lo / (1.0 - s_lo))), float(np.log(s_hi / (1.0 - s_hi)))


@dataclasses.dataclass(frozen=True)
class Bifurcations:
    """The two saddle-node bifurcations of F for a given w > 4 (Fig. 3).

    Attributes:
      b1: an attractor appears (at state x1) when b decreases through b1.
      b2: the upper attractor disappears (at state x2) when b decreases through b2 < b1.
    """

    w: float
    b1: float
    x1: float
    b2: float
    x2: float


def bifurcations(w: float) -> Bifurcations:
    """b1 and b2 analytically: b = x - w sigmoid(x) at the critical states x_lo, x_hi.

    Examples:
      >>> b = pj.bifurcations(5.0)
      >>> round(b.b1, 6), round(b.b2, 6)
      (-2.34439, -2.65561)
    """
    crit = critical_states(w)
    if crit is None:
        raise ValueError(f"F has saddle-node bifurcations only for w > 4 (got w = {w})")
    x_lo, x_hi = crit
    b_of = lambda x: float(x - w * sigmoid(x))  # noqa: E731
    return Bifurcations(w=float(w), b1=b_of(x_lo), x1=x_lo, b2=b_of(x_hi), x2=x_hi)


def _bisect(w: float, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Root of g(x) = F(x) - x in each bracket [lo, hi] with a sign change; NaN elsewhere."""
    g = lambda x: one_unit_map(x, w, b) - x  # noqa: E731
    g_lo, g_hi = g(lo), g(hi)
    has_root = (np.sign(g_lo) * np.sign(g_hi) <= 0) & (lo <= hi)
    lo, hi = lo.copy(), hi.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        g_mid = g(mid)
        left = np.sign(g_mid) == np.sign(g_lo)
        lo, g_lo = np.where(left, mid, lo), np.where(left, g_mid, g_lo)
        hi = np.where(left, hi, mid)
    # Of the two ends of the final bracket keep the one where |g| is smaller.
    root = np.where(np.abs(g(lo)) <= np.abs(g(hi)), lo, hi)
    return np.where(has_root, root, np.nan)


def fixed_point_branches(w: float, b: np.ndarray | float) -> np.ndarray:
    """The fixed points of F for every b, sorted into branches: shape (*b.shape, 3).

    Column 0: the fixed point below x_lo (stable), column 1: between x_lo and x_hi
    (unstable; the basin boundary), column 2: above x_hi (stable); NaN where a branch has
    no fixed point. For w <= 4 there is one piece: the single fixed point is in column 0
    and columns 1, 2 are NaN.

    A fixed point exactly at x_lo or x_hi (b exactly b1 or b2) is a double root without a
    sign change; it is found only up to rounding of the bracket ends.

    Examples:
      >>> branches = pj.fixed_point_branches(5.0, np.array([-2.5, -2.0]))  # lower, middle, upper
      >>> branches.round(3) + 0.0
      array([[-1.776,  0.   ,  1.776],
             [   nan,    nan,  2.679]])
    """
    b = np.asarray(b, dtype=np.float64)
    lo = b + min(w, 0.0)
    hi = b + max(w, 0.0)
    crit = critical_states(w)
    if crit is None:
        cuts = [lo, hi]
    else:
        cuts = [lo, np.clip(crit[0], lo, hi), np.clip(crit[1], lo, hi), hi]
    out = np.full((*b.shape, 3), np.nan)
    for i in range(len(cuts) - 1):
        out[..., i] = _bisect(w, b, cuts[i], cuts[i + 1])
    return out


def fixed_points(w: float, b: float) -> np.ndarray:
    """All fixed points of F for one b, ascending (1 to 3 of them).

    Examples:
      >>> pj.fixed_points(5.0, -2.5).round(3) + 0.0
      array([-1.776,  0.   ,  1.776])
      >>> pj.fixed_points(5.0, -2.0).round(3)  # past b1: one left
      array([2.679])
    """
    branches = fixed_point_branches(w, float(b))
    return np.unique(branches[~np.isnan(branches)])


def basin_boundary(w: float, b: np.ndarray | float) -> np.ndarray:
    """The boundary between the two basins of attraction: the unstable fixed point where
    F is bistable (b2 < b < b1, w > 4), NaN elsewhere. Same shape as b.

    Examples:
      >>> pj.basin_boundary(5.0, np.array([-2.5, -2.0])).round(3) + 0.0  # NaN outside (b2, b1)
      array([ 0., nan])
    """
    return fixed_point_branches(w, b)[..., 1]
