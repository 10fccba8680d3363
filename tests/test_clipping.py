"""clip_by_pascanu_norm against Algorithm 1 computed by hand in float64 numpy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pascanu_jax as pj


def _tree(seed, scale):
    rng = np.random.default_rng(seed)
    return {
        "W_in": jnp.asarray(scale * rng.normal(size=(3, 4)), jnp.float32),
        "W_rec": jnp.asarray(scale * rng.normal(size=(4, 4)), jnp.float32),
        "b": jnp.asarray(scale * rng.normal(size=(4,)), jnp.float32),
    }


def _norm64(tree):
    return float(
        np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))
    )


def _apply(tx, grads, params=None):
    state = tx.init(params if params is not None else grads)
    return tx.update(grads, state, params)


def test_identity_below_threshold():
    g = _tree(0, 0.1)
    assert _norm64(g) < 2.0
    out, state = _apply(pj.clip_by_pascanu_norm(2.0), g)
    chex.assert_trees_all_equal(out, g)
    assert int(state.clipped) == 0 and int(state.count) == 1
    np.testing.assert_allclose(float(state.norm), _norm64(g), rtol=1e-6)


@pytest.mark.parametrize("threshold", [0.5, 1.0, 3.0])
def test_exact_norm_and_direction_above_threshold(threshold):
    g = _tree(1, 2.0)
    n = _norm64(g)
    assert n > threshold
    out, state = _apply(pj.clip_by_pascanu_norm(threshold), g)
    np.testing.assert_allclose(_norm64(out), threshold, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(g), strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b, np.float64) * threshold / n, rtol=1e-5, atol=1e-7
        )
    assert int(state.clipped) == 1 and int(state.nonfinite) == 0


def test_norm_equal_to_threshold_counts_as_clipped():
    g = {"w": jnp.array([3.0, 4.0])}
    out, state = _apply(pj.clip_by_pascanu_norm(5.0), g)
    np.testing.assert_allclose(out["w"], [3.0, 4.0], rtol=1e-7)
    assert int(state.clipped) == 1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.1, 1.0, 10.0])
def test_equals_optax_clip_by_global_norm_on_finite_input(seed, threshold):
    g = _tree(seed, 1.0)
    ours, _ = _apply(pj.clip_by_pascanu_norm(threshold), g)
    theirs, _ = _apply(optax.clip_by_global_norm(threshold), g)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-7, atol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_skip_leaves_parameters_unchanged(bad):
    params = _tree(2, 1.0)
    g = _tree(3, 1.0)
    g["W_rec"] = g["W_rec"].at[1, 2].set(bad)
    tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.sgd(0.01))
    updates, state = tx.update(g, tx.init(params), params)
    chex.assert_trees_all_equal(optax.apply_updates(params, updates), params)
    clip = pj.clip_state(state)  # by type, never by position in the chain
    assert int(clip.nonfinite) == 1 and int(clip.clipped) == 0
    assert float(clip.mean_norm) == 0.0


def test_shrink_is_the_authors_rule():
    params = _tree(4, 1.0)
    g = _tree(5, 1.0)
    g["b"] = g["b"].at[0].set(np.nan)
    out, state = _apply(pj.clip_by_pascanu_norm(1.0, nonfinite="shrink"), g, params)
    np.testing.assert_allclose(out["W_rec"], 0.02 * np.asarray(params["W_rec"]), rtol=1e-7)
    np.testing.assert_array_equal(out["W_in"], 0.0)
    np.testing.assert_array_equal(out["b"], 0.0)
    assert int(state.nonfinite) == 1
    # The authors' guard also fires on a finite norm above 1e10; "skip" just clips it.
    huge = jax.tree.map(lambda x: x * 1e11, _tree(6, 1.0))
    out, state = _apply(pj.clip_by_pascanu_norm(1.0, nonfinite="shrink"), huge, params)
    np.testing.assert_allclose(out["W_rec"], 0.02 * np.asarray(params["W_rec"]), rtol=1e-7)
    out, state = _apply(pj.clip_by_pascanu_norm(1.0), huge)
    np.testing.assert_allclose(_norm64(out), 1.0, rtol=1e-5)
    assert int(state.clipped) == 1 and int(state.nonfinite) == 0


def test_under_jit_and_vmap_over_thresholds():
    g = _tree(7, 1.0)
    n = _norm64(g)
    thresholds = jnp.array([0.5, 1.0, n * 2, jnp.inf])

    @jax.jit
    def clip(threshold):
        tx = pj.clip_by_pascanu_norm(threshold)
        return tx.update(g, tx.init(g))

    outs, states = jax.vmap(clip)(thresholds)
    for i, thr in enumerate(np.asarray(thresholds)):
        expected = min(1.0, thr / n)
        for a, b in zip(jax.tree.leaves(outs), jax.tree.leaves(g), strict=True):
            np.testing.assert_allclose(a[i], np.asarray(b) * expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(states.clipped, [1, 1, 0, 0])
    np.testing.assert_allclose(states.norm, n, rtol=1e-6)


def test_inside_chain_with_sgd_and_state_statistics():
    params = _tree(8, 1.0)
    tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.sgd(0.01))
    state = tx.init(params)
    expected = jax.tree.map(lambda p: np.asarray(p, np.float64), params)
    norms = []
    for step, scale in enumerate([0.1, 5.0, 0.05, 3.0]):
        g = _tree(100 + step, scale)
        n = _norm64(g)
        norms.append(n)
        factor = 1.0 if n < 1.0 else 1.0 / n
        expected = jax.tree.map(
            lambda e, x, f=factor: e - 0.01 * f * np.asarray(x, np.float64), expected, g
        )
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    chex.assert_trees_all_close(params, expected, rtol=1e-5, atol=1e-7)
    clip_state = pj.clip_state(state)
    assert int(clip_state.count) == 4
    assert int(clip_state.clipped) == sum(n >= 1.0 for n in norms) == 2
    np.testing.assert_allclose(float(clip_state.mean_norm), np.mean(norms), rtol=1e-5)


@pytest.mark.parametrize("threshold", [0.0, -1.0, np.nan, "1.0", None])
def test_non_positive_or_non_numeric_threshold_is_a_value_error(threshold):
    with pytest.raises(ValueError, match="threshold must be a number > 0"):
        pj.clip_by_pascanu_norm(threshold)


def test_a_finite_gradient_beyond_float32_squares_is_rescaled_not_skipped():
    # ||g|| = 5e20: its square overflows float32, but Algorithm 1 must still rescale it.
    g = {"W_rec": jnp.full((4,), 2.5e20, jnp.float32), "b": jnp.zeros((3,), jnp.float32)}
    tx = pj.clip_by_pascanu_norm(1.0)
    updates, state = tx.update(g, tx.init(g))
    np.testing.assert_allclose(float(state.norm), 5e20, rtol=1e-5)
    assert int(state.clipped) == 1 and int(state.nonfinite) == 0
    np.testing.assert_allclose(_norm64(updates), 1.0, rtol=1e-5)


@pytest.mark.parametrize("nonfinite", ["skip", "shrink"])
def test_without_the_guard_a_nonfinite_gradient_is_applied_as_it_is(nonfinite):
    params = {"W_rec": jnp.ones((2, 2)), "b": jnp.ones((2,))}
    g = {"W_rec": jnp.full((2, 2), jnp.nan), "b": jnp.ones((2,))}
    for guard, expect_finite in ((True, True), (False, False), (jnp.asarray(False), False)):
        tx = pj.clip_by_pascanu_norm(jnp.inf, nonfinite=nonfinite, guard=guard)
        updates, state = tx.update(g, tx.init(params), params)
        assert bool(np.isfinite(updates["W_rec"]).all()) == expect_finite
        assert int(state.nonfinite) == 1  # counted either way


def test_plain_msgd_has_no_guard_and_the_clipping_methods_do():
    assert not pj.get_method("MSGD").guard
    assert pj.get_method("MSGD-C").guard and pj.get_method("MSGD-CR").guard
    assert pj.Method("mine", 2.0, 0.0).guard and not pj.Method("mine", np.inf, 0.0).guard


def test_unknown_nonfinite_mode():
    with pytest.raises(ValueError, match="skip, shrink"):
        pj.clip_by_pascanu_norm(1.0, nonfinite="zero")


def test_methods_are_data():
    assert pj.get_method("MSGD").threshold == np.inf and pj.get_method("MSGD").alpha == 0.0
    assert (pj.get_method("MSGD-C").threshold, pj.get_method("MSGD-C").alpha) == (1.0, 0.0)
    assert (pj.get_method("MSGD-CR").threshold, pj.get_method("MSGD-CR").alpha) == (1.0, 4.0)
    with pytest.raises(ValueError, match="MSGD, MSGD-C, MSGD-CR"):
        pj.get_method("Adamm")
    params = _tree(9, 1.0)
    g = _tree(10, 3.0)
    tx = pj.sgd_with_clipping(1.0)
    updates, _ = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(_norm64(updates), 0.01, rtol=1e-5)
