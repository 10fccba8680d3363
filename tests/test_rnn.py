"""rnn_states and the Flax cell against a plain numpy loop in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pascanu_jax as pj

NP_ACT = {"tanh": np.tanh, "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}


def numpy_states(params, inputs, activation):
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = np.zeros((inputs.shape[1], p["W_rec"].shape[0]))
    out = []
    for u in np.asarray(inputs, np.float64):
        h = NP_ACT[activation](h @ p["W_rec"] + u @ p["W_in"] + p["b"])
        out.append(h)
    return np.stack(out)


def _setup(scheme="basic_tanh", H=16, T=25, B=5, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = pj.init_rnn(k1, scheme, 3, H, 2)
    params["b"] = 0.3 * jax.random.normal(k3, (H,))  # exercise the bias too
    params["W_rec"] = params["W_rec"] * 2.5  # rho near 1: non-trivial, not chaotic
    inputs = jax.random.normal(k2, (T, B, 3))
    return params, inputs


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_states_equal_numpy_loop(activation):
    params, inputs = _setup()
    states = pj.rnn_states(params, inputs, activation)
    assert states.shape == (25, 5, 16) and states.dtype == jnp.float32
    np.testing.assert_allclose(states, numpy_states(params, inputs, activation), atol=2e-6)


def test_float64_states():
    with jax.enable_x64(True):
        params, inputs = _setup()
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        states = pj.rnn_states(params, inputs.astype(jnp.float64), "sigmoid")
        assert states.dtype == jnp.float64
        np.testing.assert_allclose(states, numpy_states(params, inputs, "sigmoid"), rtol=1e-13)


def test_vmap_over_parameters_and_activation_flags():
    params, inputs = _setup()
    stacked = jax.tree.map(lambda x: jnp.stack([x, 0.5 * x]), params)
    flags = jnp.array([True, False])
    states = jax.jit(jax.vmap(pj.rnn_states, in_axes=(0, None, 0)))(stacked, inputs, flags)
    np.testing.assert_allclose(states[0], numpy_states(params, inputs, "tanh"), atol=2e-6)
    half = jax.tree.map(lambda x: 0.5 * x, params)
    np.testing.assert_allclose(states[1], numpy_states(half, inputs, "sigmoid"), atol=2e-6)


def test_activation_derivative_in_terms_of_the_state():
    z = np.linspace(-4, 4, 101)
    for name, grad in (
        ("tanh", jax.vmap(jax.grad(jnp.tanh))),
        ("sigmoid", jax.vmap(jax.grad(jax.nn.sigmoid))),
    ):
        h = pj.activate(jnp.asarray(z), name)
        np.testing.assert_allclose(h, NP_ACT[name](z), atol=1e-6)
        np.testing.assert_allclose(
            pj.activation_derivative(h, name), grad(jnp.asarray(z)), atol=1e-6
        )


def test_flax_cell_in_nnx_rnn_equals_functional_core():
    params, inputs = _setup(H=12)
    for activation in ("tanh", "sigmoid"):
        cell = pj.PascanuRNNCell.from_params(params, activation)
        states = nnx.RNN(cell)(jnp.swapaxes(inputs, 0, 1))  # Flax is batch-major
        np.testing.assert_allclose(
            jnp.swapaxes(states, 0, 1), pj.rnn_states(params, inputs, activation), atol=1e-6
        )


def test_flax_cell_initialises_like_the_scheme():
    cell = pj.PascanuRNNCell(6, 50, scheme="smart_tanh", rngs=nnx.Rngs(0))
    W = np.asarray(cell.W_rec[...])
    np.testing.assert_array_equal((W != 0).sum(1), 15)
    assert abs(pj.spectral_radius(W) - 0.95) < 1e-6
    assert cell.activation == "tanh"
    assert pj.PascanuRNNCell(6, 50, scheme="sigmoid", rngs=nnx.Rngs(0)).activation == "sigmoid"


def test_bad_input():
    params, inputs = _setup()
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        pj.rnn_states(params, inputs, "relu")
    with pytest.raises(ValueError, match=r"W_in.*expected \(4, 16\)"):
        pj.rnn_states(params, jnp.zeros((5, 2, 4)), "tanh")
    with pytest.raises(ValueError, match=r"inputs must be \(T, B, n_in\)"):
        pj.rnn_states(params, inputs[0], "tanh")
    with pytest.raises(ValueError, match="lacks"):
        pj.rnn_states({"W_rec": params["W_rec"]}, inputs, "tanh")
    with pytest.raises(ValueError, match="boolean scalar"):
        pj.rnn_states(params, inputs, jnp.array(1.0))
