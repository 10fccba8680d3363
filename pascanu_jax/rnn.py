"""The recurrent network of the paper, as a `lax.scan`.

Row-vector form used for training (as the authors' code; docs/protocol.md, "Model"):

    h_t = act(h_{t-1} @ W_rec + u_t @ W_in + b),    h_0 = 0,    y_t = h_t @ W_out + b_out.

It is equivalent to the paper's eq. (2), x_t = W_rec act(x_{t-1}) + W_in u_t + b
(Pascanu et al., 2013, footnote 1).

Both activations are written as one affine map of tanh,

    act(z) = scale * tanh(slope * z) + shift,
    tanh: (scale, slope, shift) = (1, 1, 0),   sigmoid: (1/2, 1/2, 1/2),

because sigmoid(z) = (1 + tanh(z / 2)) / 2. That makes the activation *data*: runs with
sigmoid units and runs with tanh units can share one `vmap`ped program (a per-run flag),
at the cost of a single tanh per unit either way.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

Array = jax.Array
Params = Mapping[str, Array]

ACTIVATIONS = ("tanh", "sigmoid")
PARAM_NAMES = ("W_in", "W_rec", "b", "W_out", "b_out")


def activation_flag(activation: str | Array) -> Array:
    """The activation as a boolean scalar, True = tanh, False = sigmoid.

    Args:
      activation: "tanh" or "sigmoid", or already a boolean scalar (may be traced); the flag
        form lets tanh and sigmoid runs share one vmapped program.
    """
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        return jnp.asarray(activation == "tanh")
    flag = jnp.asarray(activation)
    if flag.dtype != jnp.bool_ or flag.ndim != 0:
        raise ValueError(
            "activation must be 'tanh', 'sigmoid' or a boolean scalar (True = tanh); "
            f"got an array of dtype {flag.dtype} and shape {flag.shape}"
        )
    return flag


def activation_coefficients(activation: str | Array, dtype=jnp.float32) -> tuple[Array, ...]:
    """(scale, slope, shift) of act(z) = scale * tanh(slope * z) + shift."""
    is_tanh = activation_flag(activation)
    half = jnp.asarray(0.5, dtype)
    scale = slope = jnp.where(is_tanh, jnp.asarray(1.0, dtype), half)
    return scale, slope, jnp.where(is_tanh, jnp.asarray(0.0, dtype), half)


def activate(z: Array, activation: str | Array) -> Array:
    """act(z) = scale * tanh(slope * z) + shift (module docstring).

    Examples:
      >>> pj.activate(jnp.array([0.0, 1.0]), "sigmoid")
      Array([0.5      , 0.7310586], dtype=float32)
    """
    scale, slope, shift = activation_coefficients(activation, z.dtype)
    return scale * jnp.tanh(slope * z) + shift


def activation_derivative(h: Array, activation: str | Array) -> Array:
    """act'(z) written in terms of the state h = act(z).

    tanh: 1 - h^2; sigmoid: h (1 - h). In general scale * slope * (1 - ((h - shift)/scale)^2).

    Examples:
      >>> pj.activation_derivative(jnp.array([0.0, 0.5]), "tanh")  # 1 - h^2
      Array([1.  , 0.75], dtype=float32)
    """
    scale, slope, shift = activation_coefficients(activation, h.dtype)
    t = (h - shift) / scale
    return scale * slope * (1.0 - t * t)


def check_params(
    params: Params,
    *,
    n_in: int | None = None,
    n_out: int | None = None,
    names: tuple[str, ...] = PARAM_NAMES,
) -> int:
    """Check the parameter dict of `init_rnn` (the entries in `names`); returns H.

    Raises ValueError naming the entry that is missing or has the wrong shape.
    """
    missing = [k for k in names if k not in params]
    if missing:
        raise ValueError(f"params lacks {missing}; an RNN has exactly {list(PARAM_NAMES)}")
    H = params["W_rec"].shape[-1]
    if n_in is None and "W_in" in params:
        n_in = params["W_in"].shape[0]
    if n_out is None and "W_out" in params:
        n_out = params["W_out"].shape[-1]
    expected = {
        "W_in": (n_in, H),
        "W_rec": (H, H),
        "b": (H,),
        "W_out": (H, n_out),
        "b_out": (n_out,),
    }
    for name in names:
        if tuple(params[name].shape) != expected[name]:
            raise ValueError(
                f"params[{name!r}] has shape {tuple(params[name].shape)}, expected "
                f"{expected[name]} (H = {H} hidden units, n_in = {n_in}, n_out = {n_out})"
            )
    return H


@jax.jit
def _states(params: Params, inputs: Array, is_tanh: Array) -> Array:
    W_in, W_rec, b = params["W_in"], params["W_rec"], params["b"]

    def step(h, u):
        h = activate(h @ W_rec + u @ W_in + b, is_tanh)
        return h, h

    h0 = jnp.zeros((inputs.shape[1], W_rec.shape[-1]), inputs.dtype)
    return jax.lax.scan(step, h0, inputs)[1]


def rnn_states(params: Params, inputs: Array, activation: str | Array) -> Array:
    """All hidden states of the RNN.

        h_t = act(h_{t-1} @ W_rec + u_t @ W_in + b),  h_0 = 0  (Pascanu et al., 2013, eq. 2
        in the equivalent row-vector form).

    The input projection u_t @ W_in is done inside the step although it does not depend on
    the state: hoisted out as one matmul over all steps it was slower on CPU (T=200, 15
    runs: 10.2 against 7.0 ms per forward pass), because XLA's batched matmul with an
    n_in-wide contraction is slow and the (T, B, H) result makes an extra trip to memory.

    Args:
      params: dict from `init_rnn` (only W_in, W_rec and b are read).
      inputs: (T, B, n_in), time-major.
      activation: "tanh", "sigmoid", or a boolean scalar flag (True = tanh).

    Returns:
      states (T, B, H), in the dtype of the inputs and parameters.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> pj.rnn_states(params, inputs, "tanh").shape  # (T, B, H)
      (10, 2, 4)
    """
    if inputs.ndim != 3:
        raise ValueError(f"inputs must be (T, B, n_in), got shape {tuple(inputs.shape)}")
    check_params(params, n_in=inputs.shape[-1], names=("W_in", "W_rec", "b"))
    core = {k: params[k] for k in ("W_in", "W_rec", "b")}
    return _states(core, inputs, activation_flag(activation))


def readout(params: Params, states: Array) -> Array:
    """Linear output y = h @ W_out + b_out, for states of any leading shape.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> pj.readout(params, jnp.zeros((10, 2, 4))).shape  # (T, B, n_out)
      (10, 2, 4)
    """
    return states @ params["W_out"] + params["b_out"]
