"""The paper's training methods as data (Pascanu et al., 2013, §4).

    MSGD     minibatch SGD                       threshold = inf, alpha = 0
    MSGD-C   + norm clipping (Algorithm 1)       threshold = 1,   alpha = 0
    MSGD-CR  + clipping and the regulariser      threshold = 1,   alpha = 4

All three are the same update, `optax.chain(clip_by_pascanu_norm(threshold),
optax.sgd(lr))` applied to `loss_and_grads(..., alpha=alpha)`, so a program can `vmap`
over methods by batching (threshold, alpha).
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

import jax
import optax

from pascanu_jax.clipping import clip_by_pascanu_norm

# The paper's constant learning rate (no momentum) and minibatch size.
LEARNING_RATE = 0.01
BATCH_SIZE = 20


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: clipping threshold (inf = none) and regularisation weight."""

    name: str
    threshold: float
    alpha: float


METHODS = MappingProxyType(
    {
        "MSGD": Method("MSGD", math.inf, 0.0),
        "MSGD-C": Method("MSGD-C", 1.0, 0.0),
        "MSGD-CR": Method("MSGD-CR", 1.0, 4.0),
    }
)


def get_method(method: str | Method) -> Method:
    """Look up a method by name; ValueError lists the valid ones."""
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return METHODS[method]


def sgd_with_clipping(
    threshold: float | jax.Array, learning_rate: float = LEARNING_RATE, **clip_options
) -> optax.GradientTransformation:
    """optax.chain(clip_by_pascanu_norm(threshold), optax.sgd(learning_rate)).

    `threshold` may be traced (one program for all methods); state[0] is the clip state.
    """
    return optax.chain(clip_by_pascanu_norm(threshold, **clip_options), optax.sgd(learning_rate))
