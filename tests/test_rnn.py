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
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
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
        assert cell.num_feature_axes == 1 and cell.param_dtype == jnp.float32
        expected = pj.rnn_states(params, inputs, activation)
        states = nnx.RNN(cell)(jnp.swapaxes(inputs, 0, 1))  # Flax is batch-major
        np.testing.assert_array_equal(jnp.swapaxes(states, 0, 1), expected)
        jitted = nnx.jit(lambda c, x: nnx.RNN(c, time_major=True)(x))(cell, inputs)
        np.testing.assert_array_equal(jitted, expected)
        carry, y = cell(cell.initialize_carry(inputs[0].shape), inputs[0])
        np.testing.assert_array_equal(carry, expected[0])
        np.testing.assert_array_equal(y, expected[0])


def test_flax_cell_holds_init_rnn_parameters_of_the_same_key():
    cell = pj.PascanuRNNCell(6, 50, scheme="smart_tanh", rngs=nnx.Rngs(0))
    params = pj.init_rnn(nnx.Rngs(0).params(), "smart_tanh", 6, 50, 4)
    for name in ("W_in", "W_rec", "b"):
        np.testing.assert_array_equal(getattr(cell, name)[...], params[name])
    W = np.asarray(cell.W_rec[...])
    np.testing.assert_array_equal((W != 0).sum(1), 15)
    assert abs(pj.spectral_radius(W) - 0.95) < 1e-6
    assert cell.activation == "tanh"
    assert pj.PascanuRNNCell(6, 50, scheme="sigmoid", rngs=nnx.Rngs(0)).activation == "sigmoid"


def test_flax_cell_takes_injected_initializers_and_dtypes():
    cell = pj.PascanuRNNCell(
        3,
        20,
        scheme="sigmoid",
        kernel_init=nnx.initializers.ones,
        recurrent_kernel_init=pj.initializers.recurrent_kernel_init("smart_tanh"),
        bias_init=nnx.initializers.constant(0.5),
        param_dtype=jnp.float16,
        rngs=nnx.Rngs(1),
    )
    assert cell.activation == "sigmoid"  # the scheme's, though W_rec is smart_tanh's
    np.testing.assert_array_equal(cell.W_in[...], np.ones((3, 20), np.float16))
    np.testing.assert_array_equal(cell.b[...], np.full(20, 0.5, np.float16))
    assert cell.W_rec[...].dtype == jnp.float16
    np.testing.assert_array_equal((np.asarray(cell.W_rec[...]) != 0).sum(1), 15)

    params, inputs = _setup(H=12)
    low = pj.PascanuRNNCell.from_params(params, "tanh", dtype=jnp.bfloat16)
    assert low.W_rec[...].dtype == jnp.float32  # parameters keep their dtype
    carry = low.initialize_carry((5, 3))
    assert carry.shape == (5, 12) and carry.dtype == jnp.bfloat16
    states = nnx.RNN(low, time_major=True)(inputs)
    assert states.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(states, np.float32), pj.rnn_states(params, inputs, "tanh"), atol=0.05
    )


def test_flax_cell_carry_init_and_bad_input():
    params, _ = _setup(H=12)
    cell = pj.PascanuRNNCell.from_params(params, "tanh")
    h0 = cell.initialize_carry((4, 7, 3), nnx.Rngs(carry=2), carry_init=nnx.initializers.ones)
    np.testing.assert_array_equal(h0, np.ones((4, 7, 12), np.float32))
    with pytest.raises(ValueError, match="needs rngs"):
        cell.initialize_carry((4, 3), carry_init=nnx.initializers.ones)
    with pytest.raises(ValueError, match="lacks"):
        pj.PascanuRNNCell.from_params({"W_rec": params["W_rec"]}, "tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        pj.PascanuRNNCell.from_params(params, "relu")
    with pytest.raises(ValueError, match="square"):
        pj.initializers.recurrent_kernel_init("basic_tanh")(jax.random.key(0), (3, 4))


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
