"""The three initialisations against docs/protocol.md: standard deviations, sparsity, rho."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pascanu_jax as pj

# Standard error of a sample std from n normal draws is about std / sqrt(2 n).
N = 200


@pytest.mark.parametrize(
    ("scheme", "std_in", "std_rec", "std_out", "activation"),
    [("sigmoid", 0.01, 0.01, 0.01, "sigmoid"), ("basic_tanh", 0.1, 0.1, 0.1, "tanh")],
)
def test_dense_schemes_standard_deviations(scheme, std_in, std_rec, std_out, activation):
    p = pj.init_rnn(jax.random.key(0), scheme, N, N, N)
    assert set(p) == {"W_in", "W_rec", "b", "W_out", "b_out"}
    for name, std in (("W_in", std_in), ("W_rec", std_rec), ("W_out", std_out)):
        x = np.asarray(p[name], np.float64)
        assert x.shape == (N, N)
        assert abs(x.std() / std - 1) < 0.02, name
        assert abs(x.mean()) < 3 * std / N, name
    np.testing.assert_array_equal(p["b"], 0.0)
    np.testing.assert_array_equal(p["b_out"], 0.0)
    assert pj.SCHEMES[scheme].activation == activation


def test_smart_tanh_sparsity_and_spectral_radius():
    for seed in range(5):
        p = pj.init_rnn(jax.random.key(seed), "smart_tanh", 6, 50, 4)
        W = np.asarray(p["W_rec"], np.float64)
        np.testing.assert_array_equal((W != 0).sum(axis=1), 15)
        rho = np.max(np.abs(np.linalg.eigvals(W)))
        assert abs(rho - 0.95) < 1e-6
        assert pj.spectral_radius(W) == pytest.approx(rho, rel=1e-12)
    p = pj.init_rnn(jax.random.key(0), "smart_tanh", N, N, N)
    for name in ("W_in", "W_out"):
        assert abs(np.asarray(p[name], np.float64).std() / 0.01 - 1) < 0.02
    # The non-zeros are spread over columns (not a fixed block): every column is used.
    assert (np.asarray(p["W_rec"]) != 0).any(axis=0).all()
    assert pj.SCHEMES["smart_tanh"].activation == "tanh"


def test_deterministic_by_key():
    a = pj.init_rnn(jax.random.key(1), "smart_tanh", 6, 50, 4)
    b = pj.init_rnn(jax.random.key(1), "smart_tanh", 6, 50, 4)
    c = pj.init_rnn(jax.random.key(2), "smart_tanh", 6, 50, 4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["W_rec"], c["W_rec"])


def test_bad_input():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="sigmoid, basic_tanh, smart_tanh"):
        pj.init_rnn(key, "orthogonal", 6, 50, 4)
    with pytest.raises(ValueError, match="n_hidden >= 15"):
        pj.init_rnn(key, "smart_tanh", 6, 10, 4)
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        pj.init_rnn(key, "basic_tanh", 6, 10, 0)


@pytest.mark.parametrize("scheme", ["sigmoid", "basic_tanh", "smart_tanh"])
def test_initializer_callables_build_init_rnn(scheme):
    key = jax.random.key(3)
    p = pj.init_rnn(key, scheme, 6, 20, 4)
    k_in, k_rec, k_out = jax.random.split(key, 3)
    inits = pj.initializers
    np.testing.assert_array_equal(inits.kernel_init(scheme)(k_in, (6, 20)), p["W_in"])
    np.testing.assert_array_equal(inits.recurrent_kernel_init(scheme)(k_rec, (20, 20)), p["W_rec"])
    np.testing.assert_array_equal(inits.output_kernel_init(scheme)(k_out, (20, 4)), p["W_out"])
    np.testing.assert_array_equal(inits.bias_init(scheme)(key, (20,)), p["b"])
    half = inits.kernel_init(scheme)(k_in, (6, 20), jnp.float16)
    assert half.dtype == jnp.float16
    np.testing.assert_array_equal(half, p["W_in"].astype(jnp.float16))


def test_initializer_callables_plug_into_flax():
    cell = nnx.SimpleCell(
        6,
        30,
        kernel_init=pj.initializers.kernel_init("basic_tanh"),
        recurrent_kernel_init=pj.initializers.recurrent_kernel_init("smart_tanh"),
        rngs=nnx.Rngs(0),
    )
    W = np.asarray(cell.dense_h.kernel[...])
    np.testing.assert_array_equal((W != 0).sum(1), 15)
    assert abs(pj.spectral_radius(W) - 0.95) < 1e-6
    assert 0.07 < float(jnp.std(cell.dense_i.kernel[...])) < 0.13  # std_in = 0.1
    with pytest.raises(ValueError, match="sigmoid, basic_tanh, smart_tanh"):
        pj.initializers.kernel_init("orthogonal")
