"""The paper's recurrent cell for Flax NNX, equal to the functional core (`rnn.py`).

    h_t = act(h_{t-1} @ W_rec + u_t @ W_in + b)

Drop it into `flax.nnx.RNN` like any NNX cell:

    cell = pj.PascanuRNNCell(6, 50, scheme="smart_tanh", rngs=nnx.Rngs(0))
    states = nnx.RNN(cell)(inputs)          # inputs (B, T, n_in) -> states (B, T, 50)

The cell carries no output layer; W_out and b_out belong to the model around it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from pascanu_jax.initializers import get_scheme, init_rnn
from pascanu_jax.rnn import Params, activate, activation_flag, check_params


class PascanuRNNCell(nnx.RNNCellBase):
    """Elman cell h' = act(h @ W_rec + x @ W_in + b) with the paper's initialisations.

    Args:
      in_features, hidden_features: n_in and H.
      scheme: "sigmoid", "basic_tanh" or "smart_tanh"; sets the initial weights and, unless
        `activation` is given, the activation.
      activation: "tanh" or "sigmoid".
      rngs: `nnx.Rngs` with a "params" stream.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        scheme: str = "smart_tanh",
        activation: str | None = None,
        rngs: nnx.Rngs,
    ):
        s = get_scheme(scheme)
        activation = activation or s.activation
        activation_flag(activation)  # a clear error for an unknown name
        p = init_rnn(rngs.params(), s, in_features, hidden_features, 1)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.activation = activation
        self.W_in = nnx.Param(p["W_in"])
        self.W_rec = nnx.Param(p["W_rec"])
        self.b = nnx.Param(p["b"])

    @classmethod
    def from_params(cls, params: Params, activation: str) -> PascanuRNNCell:
        """A cell holding W_in, W_rec and b of a functional parameter dict."""
        H = check_params(params, names=("W_in", "W_rec", "b"))
        cell = cls(
            params["W_in"].shape[0], H, scheme="basic_tanh", activation=activation, rngs=nnx.Rngs(0)
        )
        cell.W_in[...], cell.W_rec[...], cell.b[...] = params["W_in"], params["W_rec"], params["b"]
        return cell

    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = activate(
            carry @ self.W_rec[...] + inputs @ self.W_in[...] + self.b[...], self.activation
        )
        return h, h

    def initialize_carry(self, input_shape, rngs=None, carry_init=None) -> jax.Array:
        """h_0 = 0, of shape batch dims + (H,)."""
        del rngs, carry_init
        return jnp.zeros((*input_shape[:-1], self.hidden_features), self.W_rec[...].dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1
