"""The paper's training methods as data (Pascanu et al., 2013, §4).

    MSGD     minibatch SGD                       threshold = inf, alpha = 0, no guard
    MSGD-C   + norm clipping (Algorithm 1)       threshold = 1,   alpha = 0, guard
    MSGD-CR  + clipping and the regulariser      threshold = 1,   alpha = 4, guard

The guard is the authors' rule for a gradient whose norm is NaN, Inf or > 1e10: W_rec's
update becomes 0.02 W_rec and the others 0 (`clip_by_pascanu_norm(nonfinite="shrink")`).
In their code it sits inside the clipping branch, so plain MSGD has none: it applies such a
gradient as it is, and a blow-up ends the run as a failure (docs/protocol.md).

All three are the same update, `optax.chain(clip_by_pascanu_norm(threshold),
optax.sgd(lr))` applied to `loss_and_grads(..., alpha=alpha)` -- `step.sgd_step`, which
every training loop of the package uses -- so a program can `vmap` over methods by
batching (threshold, alpha). The clipping statistics in an optimizer state are read with
`clip_state(opt_state)` (or `optax.tree.get(opt_state, "norm")` and the like), by type and
name: where the clip state sits in the chain is not part of the API.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

import jax
import optax

from pascanu_jax.clipping import PascanuClipState, clip_by_pascanu_norm

# The paper's constant learning rate (no momentum) and minibatch size.
LEARNING_RATE = 0.01
BATCH_SIZE = 20


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: clipping threshold (inf = none), regularisation weight and
    whether the non-finite guard is on (default: where there is clipping, as the authors)."""

    name: str
    threshold: float
    alpha: float
    guard: bool | None = None  # None: on where there is clipping (resolved at creation)

    def __post_init__(self):
        if self.guard is None:
            object.__setattr__(self, "guard", bool(math.isfinite(self.threshold)))


METHODS = MappingProxyType(
    {
        "MSGD": Method("MSGD", math.inf, 0.0),
        "MSGD-C": Method("MSGD-C", 1.0, 0.0),
        "MSGD-CR": Method("MSGD-CR", 1.0, 4.0),
    }
)
"""The paper's three methods by name (§4): MSGD = (threshold inf, alpha 0, no guard),
MSGD-C = (1, 0, guard), MSGD-CR = (1, 4, guard)."""


def get_method(method: str | Method) -> Method:
    """Look up a method by name; ValueError lists the valid ones.

    Examples:
      >>> pj.get_method("MSGD-C")
      Method(name='MSGD-C', threshold=1.0, alpha=0.0, guard=True)
    """
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return METHODS[method]


def sgd_with_clipping(
    threshold: float | jax.Array, learning_rate: float = LEARNING_RATE, **clip_options
) -> optax.GradientTransformation:
    """optax.chain(clip_by_pascanu_norm(threshold), optax.sgd(learning_rate)).

    `threshold` (and `guard` among `clip_options`) may be traced: one program for all
    methods. `step.sgd_step` makes an update with it; `clip_state(state)` reads the
    clipping statistics of its state.

    Examples:
      >>> tx = pj.sgd_with_clipping(1.0)  # MSGD-C at the paper's rate 0.01
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> updates["w"]  # -0.01 times the gradient rescaled to norm 1
      Array([-0.006, -0.008], dtype=float32)
    """
    return optax.chain(clip_by_pascanu_norm(threshold, **clip_options), optax.sgd(learning_rate))


def clip_state(opt_state) -> PascanuClipState:
    """The `PascanuClipState` inside an optimizer state, found by type: read the clipping
    statistics through this (`clip_state(s).norm`, `.clipped`, `.nonfinite`, `.mean_norm`),
    never by position (`s[0]`), which depends on how the chain is built. Works on states
    with leading axes (vmapped runs): the fields then carry them too.

    Examples:
      >>> tx = pj.sgd_with_clipping(1.0)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> _, state = tx.update({"w": jnp.array([3.0, 4.0])}, state)
      >>> clip = pj.clip_state(state)
      >>> float(clip.norm), int(clip.clipped), int(clip.nonfinite)
      (5.0, 1, 0)
    """
    found = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, PascanuClipState))
        if isinstance(s, PascanuClipState)
    ]
    if len(found) != 1:
        raise ValueError(
            f"expected one PascanuClipState in the optimizer state, found {len(found)}"
        )
    return found[0]
