"""Gradient norm clipping, Algorithm 1 of Pascanu et al. (2013), as an optax transform.

    g <- dE/dtheta
    if ||g|| >= threshold:  g <- (threshold / ||g||) g

||g|| is the global L2 norm over every parameter. The step keeps the direction of the
gradient and bounds its length, which stops a step at the "wall" of the error surface
from throwing the parameters far away (the paper's §2.3 and §3.2).

The element-wise variant that the paper contrasts (Mikolov, 2012: clip each entry to
[-c, c]) is `optax.clip(c)`; optax's own `clip_by_global_norm` is the same rule as this
one, without the state and the non-finite guard kept here.

`clip_by_mean_norm` is §3.2's heuristic for the threshold: measure the average norm over
the first updates, then clip at a multiple of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

NONFINITE_MODES = ("skip", "shrink")
# The authors' guard also fires on finite norms above this (docs/protocol.md).
AUTHORS_BLOWUP_NORM = 1e10


class PascanuClipState(NamedTuple):
    """State of `clip_by_pascanu_norm`.

    Attributes:
      norm: pre-clip global norm of the last update (may be NaN or Inf).
      count: updates seen.
      clipped: updates rescaled (norm >= threshold, guard not tripped).
      nonfinite: updates whose norm was non-finite (with "shrink": or above 1e10). With the
        guard on each is a guard trip; with it off (plain MSGD) the update was applied as
        it was.
      norm_sum: sum of the norms of the other updates.
    """

    norm: jax.Array
    count: jax.Array
    clipped: jax.Array
    nonfinite: jax.Array
    norm_sum: jax.Array

    @property
    def mean_norm(self) -> jax.Array:
        """Average pre-clip norm of the updates that did not trip the non-finite guard
        (with "shrink", norms above 1e10 trip it too): the paper's threshold heuristic
        takes a threshold from half to ten times this value (§3.2)."""
        return self.norm_sum / jnp.maximum(self.count - self.nonfinite, 1)


def _check_threshold(threshold: Any) -> None:
    if isinstance(threshold, jax.core.Tracer):
        return  # a traced threshold (jit / vmap over thresholds) is the caller's to keep > 0
    kind = np.asarray(threshold).dtype.kind
    if kind not in "iuf" or not np.all(np.asarray(threshold, dtype=np.float64) > 0):
        raise ValueError(
            f"threshold must be a number > 0 (jnp.inf disables clipping); got {threshold!r}"
        )


def global_norm(tree: Any) -> jax.Array:
    """The L2 norm over every leaf, without overflow: where the plain sum of squares
    overflows float32 (norms above ~1.8e19), it is recomputed on the tree scaled by its
    largest entry, so a finite gradient always has a finite norm."""
    plain = optax.tree.norm(tree)
    leaves = jax.tree.leaves(tree)
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
    safe = jnp.where(scale > 0, scale, 1.0)
    scaled = safe * optax.tree.norm(jax.tree.map(lambda x: x / safe.astype(x.dtype), tree))
    # Where the plain norm is finite it is used as it is, so results stay bitwise those of
    # optax.clip_by_global_norm.
    return jnp.where(jnp.isfinite(plain), plain, scaled)


def _default_shrink_mask(params: Any) -> Any:
    """True for leaves stored under the key "W_rec" (the authors shrink W_rec only)."""

    def is_w_rec(path, _):
        return any(getattr(p, "key", getattr(p, "name", None)) == "W_rec" for p in path)

    return jax.tree_util.tree_map_with_path(is_w_rec, params)


def clip_by_pascanu_norm(
    threshold: float | jax.Array,
    *,
    nonfinite: str = "skip",
    shrink_mask: Callable[[Any], Any] | Any = _default_shrink_mask,
    shrink_factor: float = 0.02,
    guard: bool | jax.Array = True,
) -> optax.GradientTransformation:
    """Rescale the update to norm `threshold` when its global norm is >= `threshold`.

    Algorithm 1 of Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
    neural networks", ICML 2013:  g <- min(1, threshold / ||g||) g,  with the rescale
    applied when ||g|| >= threshold.

    Args:
      threshold: positive float or array; may be traced, so one program can `vmap` over
        thresholds. `jnp.inf` disables clipping (plain MSGD).
      nonfinite: what to do when the norm is NaN or Inf.
        "skip" (default): the update is zero, so SGD leaves the parameters unchanged.
        "shrink": the authors' rule (their code; docs/protocol.md): when the norm is NaN, Inf
        or above 1e10, the update becomes `shrink_factor * params` for the leaves selected by
        `shrink_mask` (W_rec by default) and 0 elsewhere; under SGD with rate lr this
        multiplies W_rec by (1 - lr * shrink_factor). Needs `params` in `update`.
      shrink_mask: pytree of bools like params, or a callable params -> such a pytree.
      shrink_factor: the multiple of the parameters used by "shrink" (authors: 0.02).
      guard: whether the `nonfinite` rule applies at all (may be traced, one program for
        all methods). False is the authors' plain MSGD, whose guard sits inside the clipping
        branch it lacks: a non-finite update is applied as it is and the run is ruined.

    Returns:
      An `optax.GradientTransformation` whose state is a `PascanuClipState`.

    Examples:
      >>> tx = pj.clip_by_pascanu_norm(1.0)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> g, state = tx.update({"w": jnp.array([3.0, 4.0])}, state)
      >>> g["w"], float(state.norm)  # rescaled to norm 1; the norm before
      (Array([0.6, 0.8], dtype=float32), 5.0)
      >>> g, state = tx.update({"w": jnp.array([jnp.nan, 1.0])}, state)
      >>> g["w"], int(state.nonfinite)  # "skip": a non-finite gradient makes no update
      (Array([0., 0.], dtype=float32), 1)
    """
    _check_threshold(threshold)
    if nonfinite not in NONFINITE_MODES:
        raise ValueError(
            f"unknown nonfinite mode {nonfinite!r}; valid: {', '.join(NONFINITE_MODES)}"
        )

    def init_fn(params):
        del params
        zero = jnp.zeros((), jnp.int32)
        return PascanuClipState(jnp.zeros(()), zero, zero, zero, jnp.zeros(()))

    def update_fn(updates, state, params=None):
        norm = global_norm(updates)
        bad = ~jnp.isfinite(norm)
        if nonfinite == "shrink":
            bad = bad | (norm > AUTHORS_BLOWUP_NORM)
        tripped = bad & jnp.asarray(guard, bool)
        clip = ~tripped & jnp.isfinite(norm) & (norm >= threshold)

        def rescale(g):
            # Same arithmetic as optax.clip_by_global_norm, so finite results agree.
            clipped = (g / norm.astype(g.dtype)) * jnp.asarray(threshold, g.dtype)
            return jnp.where(clip, clipped, g)

        new = jax.tree.map(rescale, updates)
        if nonfinite == "skip":
            new = jax.tree.map(lambda g: jnp.where(tripped, jnp.zeros_like(g), g), new)
        else:
            if params is None:
                raise ValueError(
                    "clip_by_pascanu_norm(nonfinite='shrink') needs params in update()"
                )
            mask = shrink_mask(params) if callable(shrink_mask) else shrink_mask
            shrunk = jax.tree.map(
                lambda m, p: shrink_factor * p if m else jnp.zeros_like(p), mask, params
            )
            new = jax.tree.map(lambda g, s: jnp.where(tripped, s.astype(g.dtype), g), new, shrunk)
        new_state = PascanuClipState(
            norm=norm.astype(state.norm.dtype),
            count=state.count + 1,
            clipped=state.clipped + clip.astype(jnp.int32),
            nonfinite=state.nonfinite + bad.astype(jnp.int32),
            norm_sum=state.norm_sum + jnp.where(bad, 0.0, norm).astype(state.norm_sum.dtype),
        )
        return new, new_state

    return optax.GradientTransformation(init_fn, update_fn)


class MeanNormClipState(NamedTuple):
    """State of `clip_by_mean_norm`.

    Attributes:
      clip: the `PascanuClipState` of the norm clipping inside (norms, counts, `mean_norm`).
      threshold: the threshold in use: inf while the mean norm is measured, then
        `multiple` times the mean norm of the measured updates, fixed from there on.
      measured: the mean pre-clip norm of the measured updates (0 until measured).
    """

    clip: PascanuClipState
    threshold: jax.Array
    measured: jax.Array


def clip_by_mean_norm(
    multiple: float | jax.Array,
    measure: int | jax.Array,
    **clip_options,
) -> optax.GradientTransformation:
    """Norm clipping with the threshold set from the measured average norm (§3.2).

    The paper's heuristic: "look at statistics on the average norm over a sufficiently
    large number of updates. In our experience values from half to ten times this average
    can still yield convergence" (Pascanu, Mikolov & Bengio, ICML 2013, §3.2). The first
    `measure` updates are not clipped (the non-finite guard still applies) and their
    pre-clip norms are averaged (guard trips excluded, `PascanuClipState.mean_norm`); from
    then on, Algorithm 1 clips at

        threshold = multiple * mean_{n < measure} ||g_n||.

    Args:
      multiple: the multiple of the mean norm, > 0; may be traced.
      measure: updates measured before clipping starts, >= 1; may be traced.
      **clip_options: `clip_by_pascanu_norm`'s (`nonfinite`, `guard`, ...).

    Returns:
      An `optax.GradientTransformation` whose state is a `MeanNormClipState`.

    Examples:
      >>> tx = pj.clip_by_mean_norm(0.5, measure=2)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for g in ([3.0, 4.0], [6.0, 8.0]):  # norms 5 and 10: measured, not clipped
      ...     _, state = tx.update({"w": jnp.array(g)}, state)
      >>> float(state.measured), float(state.threshold)  # mean 7.5, threshold 0.5 * 7.5
      (7.5, 3.75)
      >>> g, state = tx.update({"w": jnp.array([6.0, 8.0])}, state)
      >>> g["w"]  # rescaled to norm 3.75
      Array([2.25, 3.  ], dtype=float32)
    """
    _check_threshold(multiple)
    if not isinstance(measure, jax.core.Tracer) and not (
        np.asarray(measure).dtype.kind in "iu" and np.all(np.asarray(measure) >= 1)
    ):
        raise ValueError(f"measure must be a whole number of updates >= 1; got {measure!r}")
    inner_init = clip_by_pascanu_norm(1.0, **clip_options).init

    def init_fn(params):
        return MeanNormClipState(inner_init(params), jnp.asarray(jnp.inf), jnp.zeros(()))

    def update_fn(updates, state, params=None):
        measuring = state.clip.count < measure
        threshold = jnp.where(measuring, jnp.inf, state.threshold)
        inner = clip_by_pascanu_norm(threshold, **clip_options)
        new, clip = inner.update(updates, state.clip, params)
        now = measuring & (clip.count >= measure)
        measured = jnp.where(now, clip.mean_norm, state.measured)
        threshold = jnp.where(now, multiple * clip.mean_norm, state.threshold)
        return new, MeanNormClipState(clip, threshold.astype(state.threshold.dtype), measured)

    return optax.GradientTransformation(init_fn, update_fn)
