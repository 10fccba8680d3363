"""The one-unit map of Fig. 3 against independent computations: the map itself, finite
differences, brute-force sign counting on a dense grid, and plain iteration."""

import math

import numpy as np
import pytest

import pascanu_jax as pj
from pascanu_jax.analysis import dynamics

W_VALUES = (5.0, 8.0, 4.2, 3.0, 1.0, -2.0, -6.0)


def reference_map(x, w, b):
    return w / (1.0 + math.exp(-x)) + b


def count_sign_changes(w, b):
    """Number of roots of F(x) - x by brute force: sign changes on a dense grid covering
    every x that can be a fixed point (0 < sigmoid < 1). The grid is shifted off round
    numbers so that no root (e.g. x = 0 at b = -w/2) falls on a grid point."""
    x = np.linspace(b + min(w, 0.0) - 1, b + max(w, 0.0) + 1, 400_001) + math.pi * 1e-6
    g = w / (1.0 + np.exp(-x)) + b - x
    return int(np.sum(np.sign(g[1:]) != np.sign(g[:-1])))


@pytest.mark.parametrize("w", W_VALUES)
def test_fixed_points_satisfy_the_map_and_are_all_found(w):
    for b in np.linspace(-w - 3.0, 3.0, 23):
        points = pj.fixed_points(w, b)
        assert len(points) >= 1
        for x in points:
            assert abs(reference_map(x, w, b) - x) < 1e-10
        assert len(points) == count_sign_changes(w, b), (w, b, points)


def test_three_fixed_points_in_the_bistable_interval_of_fig3():
    points = pj.fixed_points(5.0, -2.5)
    assert len(points) == 3
    # sigmoid(-x) = 1 - sigmoid(x) makes b = -w/2 symmetric: x, 0, -x.
    np.testing.assert_allclose(points, [-points[2], 0.0, points[2]], atol=1e-12)
    np.testing.assert_array_equal(pj.is_stable(points, 5.0), [True, False, True])


@pytest.mark.parametrize("w", W_VALUES)
def test_stability_matches_a_finite_difference_derivative(w):
    for b in np.linspace(-w - 3.0, 3.0, 17):
        for x in pj.fixed_points(w, b):
            h = 1e-5
            slope = (reference_map(x + h, w, b) - reference_map(x - h, w, b)) / (2 * h)
            assert abs(float(dynamics.map_slope(x, w)) - slope) < 1e-8
            if abs(abs(slope) - 1.0) > 1e-6:
                assert bool(pj.is_stable(x, w)) == (abs(slope) < 1.0)


@pytest.mark.parametrize("w", (5.0, 4.5, 10.0))
def test_b1_b2_are_where_the_number_of_fixed_points_changes(w):
    bif = pj.bifurcations(w)
    assert bif.b2 < bif.b1
    for b, x in ((bif.b1, bif.x1), (bif.b2, bif.x2)):
        assert abs(reference_map(x, w, b) - x) < 1e-12  # a fixed point ...
        assert abs(float(dynamics.map_slope(x, w)) - 1.0) < 1e-12  # ... of slope 1: a tangency
    eps = 1e-6
    assert len(pj.fixed_points(w, bif.b1 + eps)) == 1
    assert len(pj.fixed_points(w, bif.b1 - eps)) == 3
    assert len(pj.fixed_points(w, bif.b2 + eps)) == 3
    assert len(pj.fixed_points(w, bif.b2 - eps)) == 1
    # Decreasing b through b1 a lower attractor appears; through b2 the upper one goes.
    assert pj.fixed_points(w, bif.b1 - eps)[0] < bif.x1 < pj.fixed_points(w, bif.b1 + eps)[0]
    assert pj.fixed_points(w, bif.b2 - eps)[0] < bif.x2


def test_fig3_bifurcations_for_w_5():
    bif = pj.bifurcations(5.0)
    # Independent closed form: sigmoid(x) (1 - sigmoid(x)) = 1/5 at s = (1 -+ sqrt(1/5)) / 2.
    s = (1 - math.sqrt(0.2)) / 2
    x = math.log(s / (1 - s))
    assert bif.b1 == pytest.approx(x - 5 * s, abs=1e-12)
    assert bif.b1 == pytest.approx(-2.3443897, abs=1e-6)
    assert bif.b2 == pytest.approx(-2.6556103, abs=1e-6)


def test_no_bifurcations_for_w_at_most_4():
    with pytest.raises(ValueError, match="w > 4"):
        pj.bifurcations(4.0)
    assert np.all(np.isnan(pj.basin_boundary(3.0, np.linspace(-5, 2, 11))))


@pytest.mark.parametrize("w", (5.0, 7.0))
def test_basin_boundary_separates_the_two_attractors(w):
    bif = pj.bifurcations(w)
    for b in np.linspace(bif.b2, bif.b1, 7)[1:-1]:
        lower, boundary, upper = pj.fixed_point_branches(w, b)
        assert boundary == pytest.approx(float(pj.basin_boundary(w, b)))
        for offset in (1e-7, 1e-3, 0.3, 5.0):
            x = boundary - offset
            y = boundary + offset
            for _ in range(3000):
                x, y = reference_map(x, w, b), reference_map(y, w, b)
            assert x == pytest.approx(lower, abs=1e-9)
            assert y == pytest.approx(upper, abs=1e-9)
        np.testing.assert_allclose(
            pj.iterate_map([boundary - 1e-7, boundary + 1e-7], w, b, 3000), [lower, upper]
        )
    # Outside the bistable interval there is one attractor and no boundary.
    assert np.isnan(pj.basin_boundary(w, bif.b1 + 0.1))
    assert np.isnan(pj.basin_boundary(w, bif.b2 - 0.1))


def test_branches_are_vectorised_over_b():
    bs = np.linspace(-4.0, -1.0, 31)
    branches = pj.fixed_point_branches(5.0, bs)
    assert branches.shape == (31, 3)
    for b, row in zip(bs, branches, strict=True):
        np.testing.assert_array_equal(np.unique(row[~np.isnan(row)]), pj.fixed_points(5.0, b))
