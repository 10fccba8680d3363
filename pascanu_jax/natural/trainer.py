"""Training the three methods side by side on a natural problem (§4.2, Table 1).

The three methods run as one program: their parameters carry a leading method axis and
one `jax.vmap` applies the same update -- `pj.sgd_step` (the gradient of
`pj.loss_and_grads`, Algorithm 1's clipping, SGD) -- with each method's (threshold, alpha)
as data, on the same minibatches in the same order.

    MSGD      threshold = inf       alpha_t = 0
    MSGD+C    threshold = c         alpha_t = 0
    MSGD+CR   threshold = c         alpha_t = alpha0 * tau / (tau + t)

The paper found that a fixed regularisation weight harms these tasks and used "a 1/t
decreasing schedule"; here t counts the updates already made (0 for the first) and tau is
the number of updates per round (about one epoch), so alpha_t ~ alpha0 / (1 + epochs
done) and ~ alpha0 tau / t for large t. alpha_t is a traced value: one compiled program
serves every step.

A round is `updates_per_round` updates (default: ceil(training items / batch size), one
epoch); after each round the full validation set is scored and each method keeps its
parameters of best validation score; a method stops for good after `patience` rounds
without improvement, the run when all have stopped or after `max_rounds`. Reported: the
full training, validation and test sets at each method's best parameters. The data sets,
the paper's numbers and the hyperparameters (`TrainConfig`, `default_config`) are in
`problems.py`.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pascanu_jax.initializers import get_scheme, init_rnn
from pascanu_jax.methods import METHODS, clip_state
from pascanu_jax.natural.music import SPLITS
from pascanu_jax.natural.problems import Problem, TrainConfig
from pascanu_jax.natural.sequence_model import gather_batch, sequence_nll
from pascanu_jax.outputs.folder import OutputFolderError, read_json_file, warn
from pascanu_jax.step import init_opt_state, rnn_gradients, sgd_step

METHOD_NAMES = tuple(METHODS)
"""The methods `train_methods` trains by default: MSGD, MSGD-C, MSGD-CR."""


class RoundState(NamedTuple):
    """What carries from one round to the next: params and opt_state with a leading method
    axis, and t, the updates made so far (a float32 scalar, for the alpha schedule)."""

    params: dict
    opt_state: Any
    t: jax.Array


def alpha_schedule(alpha0: float | jax.Array, t: jax.Array, tau: float | jax.Array) -> jax.Array:
    """alpha_t = alpha0 * tau / (tau + t): the paper's 1/t decay (t = updates made).

    Examples:
      >>> pj.alpha_schedule(4.0, jnp.array([0, 100, 300]), 100.0)  # alpha0 tau / (tau + t)
      Array([4., 2., 1.], dtype=float32, weak_type=True)
    """
    return alpha0 * tau / (tau + t)


def method_arrays(names: Sequence[str], config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, alpha0s) per method: the paper's methods with threshold c and alpha0.

    Examples:
      >>> from pascanu_jax.natural import default_config, method_arrays
      >>> method_arrays(["MSGD", "MSGD-C", "MSGD-CR"], default_config("music"))  # thresholds, alpha
      (array([inf,  2.,  2.], dtype=float32), array([0., 0., 4.], dtype=float32))
    """
    thresholds, alphas = [], []
    for name in names:
        if name not in METHODS:  # Table 1 compares the paper's three
            raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
        method = METHODS[name]
        clipped = math.isfinite(method.threshold)
        thresholds.append(config.threshold if clipped else math.inf)
        alphas.append(config.alpha0 if method.alpha > 0 else 0.0)
    return np.array(thresholds, np.float32), np.array(alphas, np.float32)


class ItemSampler:
    """Minibatches of item indices: epochs of random permutations, back to back, and crop
    starts uniform over each item's possible starts (items no longer than the crop start
    at 0). Host-side numpy, seeded, so a run is reproducible."""

    def __init__(self, lengths: np.ndarray, crop: int, seed: int):
        self.lengths = np.asarray(lengths)
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.queue = np.zeros(0, np.int64)

    def draw(self, n_updates: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        need = n_updates * batch
        while len(self.queue) < need:
            self.queue = np.concatenate([self.queue, self.rng.permutation(len(self.lengths))])
        items, self.queue = self.queue[:need], self.queue[need:]
        room = np.maximum(self.lengths[items] - self.crop, 0)
        starts = np.floor(self.rng.random(need) * (room + 1)).astype(np.int64)
        shape = (n_updates, batch)
        return items.reshape(shape).astype(np.int32), starts.reshape(shape).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("head", "length", "learning_rate"))
def _train_round(state, data, items, starts, thresholds, alpha0s, active, tau, *, head, length,
                 learning_rate):  # fmt: skip
    """A round of updates, lax.scan over minibatches, each `sgd_step` vmapped over methods;
    a method whose `active` flag is off keeps its parameters and optimiser state."""
    is_tanh = jnp.asarray(True)

    def per_method(params, opt_state, threshold, alpha0, on, t, x, y):
        gradients = rnn_gradients(head, activation=is_tanh, alpha=alpha_schedule(alpha0, t, tau))
        params, opt_state, metrics = sgd_step(
            gradients,
            params,
            opt_state,
            (x, y),
            threshold=threshold,
            learning_rate=learning_rate,
            active=on,
        )
        return params, opt_state, metrics.loss, metrics.omega, metrics.grad_norm

    def update(carry, batch):
        x, y = gather_batch(head, data, batch[0], batch[1], length)
        params, opt_state, loss, omega, norm = jax.vmap(
            per_method, in_axes=(0, 0, 0, 0, 0, None, None, None)
        )(carry.params, carry.opt_state, thresholds, alpha0s, active, carry.t, x, y)
        return RoundState(params, opt_state, carry.t + 1), (loss, omega, norm)

    return jax.lax.scan(update, state, (items, starts))


def _scores(problem: Problem, params, split: str) -> np.ndarray:
    """Per-method mean NLL per step on a whole split, in the reported unit."""
    total, steps = sequence_nll(
        problem.head, params, problem.eval_sets[split], "tanh", batched=True
    )
    return np.asarray(total) / steps * problem.head.unit_scale


def train_methods(
    problem: Problem,
    config: TrainConfig,
    methods: Sequence[str] = METHOD_NAMES,
    *,
    progress: Callable[[int, int, dict], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the methods together on `problem`; results per method (module docstring).

    Each method's result: best_round, train / valid / test scores at its best parameters
    (in `problem.head.unit`), the learning curve (updates, mean training loss of the round,
    validation score), clipping statistics and the wall time.

    Args:
      progress: called after each round with (round, max_rounds, {method: valid score}).

    Examples:
      >>> # not run: trains every method for many epochs; `python scripts/natural.py` runs it
      >>> from pascanu_jax.natural import default_config  # doctest: +SKIP
      >>> config = default_config("music", quick=True)  # doctest: +SKIP
      >>> problem = pj.load_problem("jsb", config=config)  # doctest: +SKIP
      >>> results = pj.train_methods(problem, config)  # doctest: +SKIP
    """
    methods = tuple(methods)
    thresholds, alpha0s = method_arrays(methods, config)
    scheme = get_scheme(config.init)
    n_methods = len(methods)
    head = problem.head
    train = problem.train_items
    per_round = config.updates_per_round or -(-train.n_items // config.batch_size)
    tau = float(config.alpha_tau or per_round)

    # Every method starts from the same initial parameters (the paper compares methods).
    params0 = init_rnn(jax.random.key(config.seed), scheme, head.n_out, config.n_hidden, head.n_out)
    params = jax.tree.map(lambda a: jnp.broadcast_to(a, (n_methods, *a.shape)), params0)
    state = RoundState(params, jax.vmap(init_opt_state)(params), jnp.zeros((), jnp.float32))
    sampler = ItemSampler(np.asarray(train.lengths), config.train_length, config.seed)

    best_params = params
    best = np.full(n_methods, np.inf)
    best_round = np.zeros(n_methods, int)
    stopped_round = np.zeros(n_methods, int)
    curves = {
        m: {k: [] for k in ("updates", "train_loss", "valid", "omega", "norm_median", "norm_max")}
        for m in methods
    }
    start = time.perf_counter()
    for round_ in range(1, config.max_rounds + 1):
        # A method stops for good once it has not improved for `patience` rounds: it no
        # longer trains, so its result does not depend on which other methods share the
        # program.
        active = round_ - 1 - best_round < config.patience
        items, starts = sampler.draw(per_round, config.batch_size)
        state, (losses, omegas, norms) = _train_round(
            state,
            train,
            jnp.asarray(items),
            jnp.asarray(starts),
            jnp.asarray(thresholds),
            jnp.asarray(alpha0s),
            jnp.asarray(active),
            tau,
            head=head,
            length=config.train_length,
            learning_rate=config.learning_rate,
        )
        valid = _scores(problem, state.params, "valid")
        improved = active & np.isfinite(valid) & (valid < best)
        best_params = jax.vmap(optax.tree.where)(jnp.asarray(improved), state.params, best_params)
        best = np.where(improved, valid, best)
        best_round = np.where(improved, round_, best_round)
        losses, omegas, norms = (np.asarray(x) for x in (losses, omegas, norms))
        losses = losses * head.unit_scale
        for i in np.flatnonzero(active):
            curve = curves[methods[i]]
            curve["updates"].append(round_ * per_round)
            curve["train_loss"].append(float(np.nanmean(losses[:, i])))
            curve["valid"].append(float(valid[i]))
            curve["omega"].append(float(np.nanmean(omegas[:, i])))
            curve["norm_median"].append(float(np.median(norms[:, i])))
            curve["norm_max"].append(float(np.max(norms[:, i])))
        if progress is not None:
            progress(round_, config.max_rounds, dict(zip(methods, valid.tolist(), strict=True)))
        stopped_round = np.where(active, round_, stopped_round)
        if np.all(round_ - best_round >= config.patience):
            break
    seconds = time.perf_counter() - start

    scores = {s: _scores(problem, best_params, s) for s in SPLITS}
    clip = clip_state(state.opt_state)
    results = {}
    for i, m in enumerate(methods):
        count = int(clip.count[i])
        results[m] = {
            "method": m,
            "threshold": float(thresholds[i]),
            "alpha0": float(alpha0s[i]),
            "best_round": int(best_round[i]),
            "rounds": int(stopped_round[i]),
            "updates": int(stopped_round[i]) * per_round,
            **{s: float(scores[s][i]) for s in SPLITS},
            "clipped_fraction": int(clip.clipped[i]) / max(count, 1),
            "nonfinite_updates": int(clip.nonfinite[i]),
            "mean_gradient_norm": float(clip.mean_norm[i]),
            "curve": curves[m],
            "seconds_all_methods": seconds,
            "finished": True,
        }
    return results


RESULT_KEYS = ("train", "valid", "test", "best_round", "rounds", "curve", "finished")


def load_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """A results json written by an earlier run, or None when there is none (or it is
    empty). A file that is not such a record is an OutputFolderError naming it; a method
    whose entry is damaged is dropped, with a warning line, to be trained again.

    Examples:
      >>> from pascanu_jax.natural import load_results
      >>> load_results("no-such-folder/results.json") is None
      True
      >>> sorted(load_results("docs/results/natural_jsb_quick/results.json")["methods"])
      ['MSGD', 'MSGD-C', 'MSGD-CR']
    """
    remedy = "restore it, or delete it to train every method again"
    record = read_json_file(path, remedy, empty_is_none=True)
    if record is None:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("methods"), dict):
        raise OutputFolderError(f"{path} is damaged (no methods); {remedy}")
    for name, result in list(record["methods"].items()):
        if not isinstance(result, dict) or not all(k in result for k in RESULT_KEYS):
            warn(f"{path}: the entry of {name} is damaged; training {name} again")
            del record["methods"][name]
    return record
