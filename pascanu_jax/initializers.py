"""The three initialisations of the paper's Fig. 7 (Pascanu et al., 2013, §4.1.1).

All weights are zero-mean normal with the standard deviation below; b = b_out = 0.

    scheme       units    W_in   W_rec                                   W_out
    sigmoid      sigmoid  0.01   0.01                                    0.01
    basic_tanh   tanh     0.1    0.1                                     0.1
    smart_tanh   tanh     0.01   0.01, 15 non-zeros per row, rho = 0.95  0.01

"smart_tanh" follows the authors' code (docs/protocol.md): W_rec is drawn dense, then in every
row all but 15 randomly chosen entries are set to 0, then the matrix is rescaled so that its
spectral radius rho(W_rec) = max |eigenvalue| is exactly 0.95. (In the row-vector form
h @ W_rec a row holds a unit's outgoing weights; the paper's text speaks of 15 incoming
connections, the code of rows.)

Each matrix of a scheme is also available as an initializer `(key, shape, dtype) -> array`
(the convention of `jax.nn.initializers` and of Flax's `kernel_init` arguments):
`kernel_init(scheme)` for W_in, `recurrent_kernel_init(scheme)` for W_rec,
`output_kernel_init(scheme)` for W_out and `bias_init(scheme)` for the biases;
`init_rnn` is built from them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class InitScheme:
    """Standard deviations and structure of one initialisation scheme."""

    name: str
    activation: str
    std_in: float
    std_rec: float
    std_out: float
    rec_nonzero: int | None = None
    spectral_radius: float | None = None


SCHEMES = MappingProxyType(
    {
        "sigmoid": InitScheme("sigmoid", "sigmoid", 0.01, 0.01, 0.01),
        "basic_tanh": InitScheme("basic_tanh", "tanh", 0.1, 0.1, 0.1),
        "smart_tanh": InitScheme("smart_tanh", "tanh", 0.01, 0.01, 0.01, 15, 0.95),
    }
)
"""The paper's three initialisations by name (§4.1): sigmoid, basic_tanh, smart_tanh."""


def get_scheme(scheme: str | InitScheme) -> InitScheme:
    """Look up an initialisation scheme by name; ValueError lists the valid ones.

    Examples:
      >>> pj.get_scheme("smart_tanh")
      InitScheme(name='smart_tanh', activation='tanh', std_in=0.01, std_rec=0.01, std_out=0.01,
                 rec_nonzero=15, spectral_radius=0.95)
    """
    if isinstance(scheme, InitScheme):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unknown initialisation {scheme!r}; valid: {', '.join(SCHEMES)}")
    return SCHEMES[scheme]


def spectral_radius(W: jax.Array | np.ndarray) -> float:
    """rho(W) = max |eigenvalue of W|, computed on the host in float64.

    Examples:
      >>> pj.spectral_radius(jnp.array([[0.0, 2.0], [0.5, 0.0]]))  # eigenvalues +-1
      1.0
    """
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(W, dtype=np.float64)))))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sparse_normal(key: jax.Array, n: int, std: float, nonzero: int | None) -> jax.Array:
    """(n, n) normal(0, std) matrix; with `nonzero`, each row keeps that many random entries."""
    k_draw, k_mask = jax.random.split(key)
    W = std * jax.random.normal(k_draw, (n, n), jnp.float32)
    if nonzero is None:
        return W
    # argsort of iid uniforms is a uniformly random permutation per row.
    order = jnp.argsort(jax.random.uniform(k_mask, (n, n)), axis=1)
    keep = jnp.zeros((n, n), bool).at[jnp.arange(n)[:, None], order[:, :nonzero]].set(True)
    return jnp.where(keep, W, 0.0)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _normal(key: jax.Array, shape: tuple[int, ...], std: float) -> jax.Array:
    return std * jax.random.normal(key, shape, jnp.float32)


# (key, shape, dtype) -> array: the signature of jax.nn.initializers and of Flax's
# `kernel_init`, `recurrent_kernel_init` and `bias_init`.
Initializer = Callable[..., jax.Array]


def normal(stddev: float) -> Initializer:
    """Zero-mean normal initializer with standard deviation `stddev`.

    Drawn in float32 and then cast to `dtype`, so the values do not depend on the dtype
    asked for (beyond its rounding).
    """

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return _normal(key, tuple(shape), float(stddev)).astype(dtype)

    return init


def sparse_normal(
    stddev: float, nonzero: int | None = None, radius: float | None = None
) -> Initializer:
    """Initializer of a square matrix: normal(0, stddev), optionally sparse and rescaled.

    With `nonzero = k`, each row keeps k entries chosen uniformly without replacement and the
    others are 0; with `radius = r`, the matrix is then scaled by r / rho, rho its spectral
    radius computed on the host in float64 (eig is not available on every accelerator), so
    this initializer is not jittable. `sparse_normal(0.01, 15, 0.95)` is smart_tanh's W_rec.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"a recurrent matrix is square (H, H); got shape {shape}")
        n = shape[0]
        if nonzero is not None and n < nonzero:
            raise ValueError(
                f"keeping {nonzero} non-zeros per row of W_rec needs n_hidden >= {nonzero}; "
                f"got n_hidden = {n}"
            )
        W = _sparse_normal(key, n, float(stddev), nonzero)
        if radius is None:
            return W.astype(dtype)
        W64 = np.asarray(W, np.float64)
        rho = spectral_radius(W64)
        if rho == 0.0:
            raise ValueError("drew a W_rec with spectral radius 0; use another key")
        return jnp.asarray(W64 * (radius / rho), dtype)

    return init


def kernel_init(scheme: str | InitScheme) -> Initializer:
    """The scheme's initializer of W_in, (n_in, H): normal(0, std_in)."""
    return normal(get_scheme(scheme).std_in)


def recurrent_kernel_init(scheme: str | InitScheme) -> Initializer:
    """The scheme's initializer of W_rec, (H, H): normal(0, std_rec); for smart_tanh, 15
    non-zeros per row and spectral radius 0.95 (module docstring)."""
    s = get_scheme(scheme)
    return sparse_normal(s.std_rec, s.rec_nonzero, s.spectral_radius)


def output_kernel_init(scheme: str | InitScheme) -> Initializer:
    """The scheme's initializer of W_out, (H, n_out): normal(0, std_out)."""
    return normal(get_scheme(scheme).std_out)


def bias_init(scheme: str | InitScheme) -> Initializer:
    """The scheme's initializer of b and b_out: zeros (every scheme of the paper)."""
    get_scheme(scheme)  # a clear error for an unknown name
    return jax.nn.initializers.zeros


def recurrent_weights(
    key: jax.Array, scheme: str | InitScheme, n_hidden: int, dtype=jnp.float32
) -> jax.Array:
    """W_rec (H, H) of a scheme: `recurrent_kernel_init(scheme)(key, (H, H), dtype)`."""
    s = get_scheme(scheme)
    if s.rec_nonzero is not None and n_hidden < s.rec_nonzero:
        raise ValueError(
            f"{s.name} keeps {s.rec_nonzero} non-zeros per row of W_rec, so it needs "
            f"n_hidden >= {s.rec_nonzero}; got n_hidden = {n_hidden}"
        )
    return recurrent_kernel_init(s)(key, (n_hidden, n_hidden), dtype)


def init_rnn(
    key: jax.Array,
    scheme: str | InitScheme,
    n_in: int,
    n_hidden: int,
    n_out: int,
    dtype=jnp.float32,
) -> dict[str, jax.Array]:
    """Initial parameters of the paper's RNN.

    Args:
      key: PRNG key.
      scheme: "sigmoid", "basic_tanh" or "smart_tanh" (module docstring), or an InitScheme.
      n_in: input size.
      n_hidden: H, the hidden size (the paper uses 50).
      n_out: output size.

    Returns:
      {"W_in": (n_in, H), "W_rec": (H, H), "b": (H,), "W_out": (H, n_out), "b_out": (n_out,)}.
      The scheme's activation is `SCHEMES[scheme].activation`.

    Examples:
      >>> params = pj.init_rnn(jax.random.key(0), "smart_tanh", 6, 50, 4)
      >>> {k: v.shape for k, v in params.items()}
      {'W_in': (6, 50), 'W_rec': (50, 50), 'b': (50,), 'W_out': (50, 4), 'b_out': (4,)}
      >>> round(pj.spectral_radius(params["W_rec"]), 2)
      0.95
    """
    s = get_scheme(scheme)
    for name, n in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    k_in, k_rec, k_out = jax.random.split(key, 3)
    return {
        "W_in": kernel_init(s)(k_in, (n_in, n_hidden), dtype),
        "W_rec": recurrent_weights(k_rec, s, n_hidden, dtype),
        "b": jnp.zeros((n_hidden,), dtype),
        "W_out": output_kernel_init(s)(k_out, (n_hidden, n_out), dtype),
        "b_out": jnp.zeros((n_out,), dtype),
    }
