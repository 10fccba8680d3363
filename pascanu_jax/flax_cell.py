"""The paper's recurrent cell for Flax NNX, equal to the functional core (`rnn.py`).

    h_t = act(h_{t-1} @ W_rec + u_t @ W_in + b)

It follows the conventions of `flax.nnx.nn.recurrent` (`SimpleCell`, `LSTMCell`):
`__call__(carry, x) -> (new_carry, y)`, `initialize_carry(input_shape, rngs)`,
`num_feature_axes`, initializers injected as callables (`kernel_init`,
`recurrent_kernel_init`, `bias_init`; by default the `scheme`'s, from
`pascanu_jax.initializers`), `dtype` for the computation and `param_dtype` for the
parameters. Drop it into `flax.nnx.RNN` like any NNX cell:

    cell = pj.PascanuRNNCell(6, 50, scheme="smart_tanh", rngs=nnx.Rngs(0))
    states = nnx.RNN(cell)(inputs)          # inputs (B, T, n_in) -> states (B, T, 50)

or wrap trained parameters of the functional core:

    cell = pj.PascanuRNNCell.from_params(params, "tanh")

The cell carries no output layer; W_out and b_out belong to the model around it.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.dtypes import promote_dtype

from pascanu_jax import initializers
from pascanu_jax.initializers import Initializer, get_scheme
from pascanu_jax.rnn import Params, activate, activation_flag, check_params


class PascanuRNNCell(nnx.RNNCellBase):
    """Elman cell h' = act(h @ W_rec + x @ W_in + b) with the paper's initialisations.

    With the default initializers and `rngs=nnx.Rngs(s)`, the cell holds the W_in, W_rec and
    b that `init_rnn(nnx.Rngs(s).params(), scheme, ...)` returns: one key is drawn from the
    "params" stream and split as `init_rnn` splits it.

    Args:
      in_features: n_in.
      hidden_features: H.
      scheme: "sigmoid", "basic_tanh" or "smart_tanh" (`initializers.SCHEMES`); gives the
        default initializers and, unless `activation` is given, the activation.
      activation: "tanh" or "sigmoid".
      kernel_init: initializer `(key, shape, dtype)` of W_in (n_in, H); None: the
        scheme's (`initializers.kernel_init(scheme)`).
      recurrent_kernel_init: the same for W_rec (H, H); None: the scheme's.
      bias_init: the same for b (H,); None: the scheme's.
      dtype: the dtype of the computation; None: inferred from the carry, inputs and
        parameters (`flax.nnx.nn.dtypes.promote_dtype`).
      param_dtype: the dtype of the parameters and of the initial carry.
      rngs: `nnx.Rngs` with a "params" stream.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        scheme: str = "smart_tanh",
        activation: str | None = None,
        kernel_init: Initializer | None = None,
        recurrent_kernel_init: Initializer | None = None,
        bias_init: Initializer | None = None,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        s = get_scheme(scheme)
        activation = activation or s.activation
        activation_flag(activation)  # a clear error for an unknown name
        kernel_init = kernel_init or initializers.kernel_init(s)
        recurrent_kernel_init = recurrent_kernel_init or initializers.recurrent_kernel_init(s)
        bias_init = bias_init or initializers.bias_init(s)
        k_in, k_rec, k_b = jax.random.split(rngs.params(), 3)  # as init_rnn splits its key
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.activation = activation
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.W_in = nnx.Param(kernel_init(k_in, (in_features, hidden_features), param_dtype))
        self.W_rec = nnx.Param(
            recurrent_kernel_init(k_rec, (hidden_features, hidden_features), param_dtype)
        )
        self.b = nnx.Param(bias_init(k_b, (hidden_features,), param_dtype))

    @classmethod
    def from_params(cls, params: Params, activation: str, *, dtype=None) -> PascanuRNNCell:
        """A cell holding W_in, W_rec and b of a functional parameter dict (`init_rnn`).

        The arrays are injected as the initializers, so nothing is drawn and no other cell
        is built; the parameters keep their dtype (`param_dtype` = that of W_rec).
        """
        H = check_params(params, names=("W_in", "W_rec", "b"))
        return cls(
            params["W_in"].shape[0],
            H,
            activation=activation,
            kernel_init=_given("W_in", params["W_in"]),
            recurrent_kernel_init=_given("W_rec", params["W_rec"]),
            bias_init=_given("b", params["b"]),
            dtype=dtype,
            param_dtype=params["W_rec"].dtype,
            rngs=nnx.Rngs(0),  # split, never drawn from
        )

    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One step: (h, x) -> (h', h'), with h (*batch, H) and x (*batch, n_in)."""
        h, x, W_rec, W_in, b = promote_dtype(
            (carry, inputs, self.W_rec[...], self.W_in[...], self.b[...]), dtype=self.dtype
        )
        h = activate(h @ W_rec + x @ W_in + b, self.activation)
        return h, h

    def initialize_carry(
        self,
        input_shape: tuple[int, ...],
        rngs: nnx.Rngs | nnx.RngStream | None = None,
        carry_init: Initializer | None = None,
    ) -> jax.Array:
        """h_0, of shape batch dims + (H,): zeros (the paper's h_0 = 0) unless `carry_init`.

        `rngs` is only needed by a `carry_init` that draws (its "carry" stream is used).
        The carry has the computation dtype, `dtype` if given, else `param_dtype`.
        """
        shape = (*input_shape[:-1], self.hidden_features)
        dtype = self.param_dtype if self.dtype is None else self.dtype
        if carry_init is None:
            return jnp.zeros(shape, dtype)
        if isinstance(rngs, nnx.Rngs):
            rngs = rngs.carry
        if rngs is None:
            raise ValueError("a carry_init needs rngs to draw the initial carry")
        return carry_init(rngs(), shape, dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


def _given(name: str, value: jax.Array) -> Initializer:
    """An initializer that returns `value` (checked against the shape asked for)."""

    def init(key: jax.Array, shape: Sequence[int], dtype=None) -> jax.Array:
        del key
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"{name} has shape {tuple(value.shape)}, the cell needs {shape}")
        return jnp.asarray(value, dtype)

    return init
