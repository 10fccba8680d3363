"""The natural problems of Pascanu, Mikolov & Bengio (2013, §4.2, Table 1): polyphonic
music (NLL per time step) and character-level language modelling (bits per character),
each trained with MSGD, MSGD+C and MSGD+CR.

The three methods run as one program: their parameters carry a leading method axis and
one `jax.vmap` applies the same update -- `pj.loss_and_grads` then
`pj.sgd_with_clipping(threshold)` -- with each method's (threshold, alpha) as data, on the
same minibatches in the same order.

    MSGD      threshold = inf       alpha_t = 0
    MSGD+C    threshold = c         alpha_t = 0
    MSGD+CR   threshold = c         alpha_t = alpha0 * tau / (tau + t)

The paper found that a fixed regularisation weight harms these tasks and used "a 1/t
decreasing schedule"; here t counts the updates already made (0 for the first) and tau is
the number of updates per round (about one epoch), so alpha_t ~ alpha0 / (1 + epochs
done) and ~ alpha0 tau / t for large t. alpha_t is a traced value: one compiled program
serves every step.

The authors' natural-task hyperparameters are in supplementary material that we do not
have; the defaults (`default_config`) are our choices and are printed with every result.
Common to all: tanh units initialised as "smart_tanh" (the paper's initialisation for its
synthetic tasks: spectral radius 0.95, 15 non-zeros per row), plain SGD without momentum
(the paper's MSGD) on minibatches of 20 sequences (the paper's batch size) cropped to 100
steps, alpha0 = 4 (the paper's weight for the synthetic tasks, here decaying), non-finite
gradients skipped, seed 0.

                   hidden  learning rate  threshold c  rounds (at most)      patience
    music              50            0.3            2  1000 epochs                 30
    text               50            1.0            1   100 epochs                  5
    music, --quick     50            0.3            2   150 epochs                 20
    text, --quick      50            1.0            1    10 rounds of 200 updates   5

The learning rates are the largest at which plain MSGD trained stably in short trials
(music: of 0.1, 0.3, 0.5, 1 on the JSB chorales; text: of 0.3, 1, 3 on a 145 kB English
text; at the next rate up MSGD's gradient norm exploded). The safe rate falls with the
width: with 200 hidden units, text at rate 1 already throws MSGD off a cliff, so change
--hidden and --lr together. The thresholds follow the paper's heuristic (§3.2: from half
to ten times the average gradient norm, which was about 1.7 for music and 0.5 for text at
these rates).

A round is `updates_per_round` updates (default: ceil(training items / batch size), one
epoch); after each round the full validation set is scored and each method keeps its
parameters of best validation score; a method stops for good after `patience` rounds
without improvement, the run when all have stopped or after `max_rounds`. Reported: the
full training, validation and test sets at each method's best parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pascanu_jax.experiments.presets import SettingError, preset
from pascanu_jax.initializers import get_scheme, init_rnn
from pascanu_jax.methods import BATCH_SIZE, METHODS, get_method, sgd_with_clipping
from pascanu_jax.natural.music import SPLITS, load_jsb_chorales, load_piano_roll_pickle
from pascanu_jax.natural.sequence_model import (
    CharHead,
    NoteHead,
    SequenceHead,
    SequenceSet,
    gather_batch,
    music_set,
    sequence_nll,
    text_set,
)
from pascanu_jax.natural.text import load_ptb_chars, load_text_file
from pascanu_jax.outputs.folder import OutputFolderError, read_json_file, warn
from pascanu_jax.regularizer import loss_and_grads

METHOD_NAMES = tuple(METHODS)

# Data sets: name -> (kind, what --data must be).
DATASETS = MappingProxyType(
    {
        "jsb": ("music", "nothing (the music21 corpus; needs the 'natural' extra)"),
        "jsb-pickle": ("music", "JSB Chorales.pickle"),
        "piano": ("music", "Piano-midi.de.pickle"),
        "nottingham": ("music", "Nottingham.pickle"),
        "musedata": ("music", "MuseData.pickle"),
        "ptb": ("text", "a folder with ptb.char.{train,valid,test}.txt"),
        "chars": ("text", "any UTF-8 text file"),
    }
)

# Table 1 of the paper: (train, test) per method; None where the paper has no entry.
PAPER_TABLE1 = MappingProxyType(
    {
        "piano": {"MSGD": (6.87, 7.56), "MSGD-C": (6.81, 7.53), "MSGD-CR": (7.01, 7.46)},
        "nottingham": {"MSGD": (3.67, 3.80), "MSGD-C": (3.21, 3.48), "MSGD-CR": (2.95, 3.36)},
        "musedata": {"MSGD": (8.25, 7.11), "MSGD-C": (6.54, 7.00), "MSGD-CR": (6.43, 6.97)},
        "ptb-1": {"MSGD": (1.46, 1.50), "MSGD-C": (1.34, 1.42), "MSGD-CR": (1.36, 1.41)},
        "ptb-5": {"MSGD": None, "MSGD-C": (3.76, 3.89), "MSGD-CR": (3.70, 3.74)},
    }
)
PAPER_NAMES = MappingProxyType(
    {
        "piano": "Piano-midi.de (NLL)",
        "nottingham": "Nottingham (NLL)",
        "musedata": "MuseData (NLL)",
        "ptb-1": "Penn Treebank 1 step (bits/char)",
        "ptb-5": "Penn Treebank 5 steps (bits/char)",
    }
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a natural-problem run; the defaults are those for music
    (`default_config` and the module docstring give the others)."""

    n_hidden: int = 50
    init: str = "smart_tanh"
    learning_rate: float = 0.3
    batch_size: int = BATCH_SIZE
    train_length: int = 100
    threshold: float = 2.0
    alpha0: float = 4.0
    alpha_tau: int | None = None  # updates; None: updates_per_round
    updates_per_round: int | None = None  # None: one epoch
    max_rounds: int = 1000
    patience: int = 30
    eval_length: int = 1000  # text: symbols per evaluation segment
    seed: int = 0

    def __post_init__(self):
        scheme = get_scheme(self.init)  # ValueError lists the valid schemes
        if scheme.activation != "tanh":
            raise ValueError(f"init {self.init!r} has {scheme.activation} units; use a tanh one")
        if scheme.rec_nonzero is not None and self.n_hidden < scheme.rec_nonzero:
            raise SettingError(
                f"init {self.init!r} needs {{n_hidden}} >= {scheme.rec_nonzero}", "n_hidden"
            )
        positive = ("n_hidden", "batch_size", "train_length", "max_rounds", "patience")
        positive += ("eval_length", "alpha_tau", "updates_per_round")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingError(f"{{{name}}} must be >= 1, got {value}", name)
        for name, value, ok in (
            ("learning_rate", self.learning_rate, self.learning_rate > 0),
            ("threshold", self.threshold, self.threshold > 0),
            ("alpha0", self.alpha0, self.alpha0 >= 0),
        ):
            if not ok:
                raise SettingError(
                    f"{{{name}}} must be {'>= 0' if name == 'alpha0' else '> 0'}, got {value}",
                    name,
                )


@dataclasses.dataclass(frozen=True)
class Problem:
    """A natural problem ready to train: the head, training items and evaluation sets."""

    name: str
    head: SequenceHead
    train_items: SequenceSet
    eval_sets: MappingProxyType  # split -> SequenceSet of whole sequences
    info: MappingProxyType
    paper_key: str | None


def _preset(**fields: Any) -> TrainConfig:
    return TrainConfig(**fields)


_TEXT = {"n_hidden": 50, "learning_rate": 1.0, "threshold": 1.0, "patience": 5}
PRESETS = MappingProxyType(
    {
        "music": _preset(),
        "music-quick": _preset(max_rounds=150, patience=20),
        "text": _preset(**_TEXT, max_rounds=100),
        "text-quick": _preset(**_TEXT, max_rounds=10, updates_per_round=200),
    }
)


def default_config(kind: str, quick: bool = False, **overrides: Any) -> TrainConfig:
    """The preset of the module docstring for "music" or "text" (`PRESETS`), with the
    overrides that are not None."""
    if kind not in ("music", "text"):
        raise ValueError(f"unknown kind {kind!r}; valid: music, text")
    return preset(PRESETS, kind + ("-quick" if quick else ""), **overrides)


def load_problem(
    dataset: str,
    data: str | os.PathLike | None = None,
    *,
    steps_ahead: int = 1,
    config: TrainConfig = TrainConfig(),
    max_pieces: int | None = None,
    cache_dir: str | os.PathLike | None = "default",
) -> Problem:
    """Load a data set of `DATASETS` as a `Problem`.

    Args:
      dataset: a name of `DATASETS`.
      data: the file or folder (`DATASETS[dataset][1]`); must be None for "jsb".
      steps_ahead: text only: predict the symbol this many steps ahead (the paper: 1 and 5).
      config: train_length and eval_length set how text is cut into items.
      max_pieces: jsb only: keep the first pieces of each split (quick tests).
      cache_dir: jsb only: where the converted chorales are cached (None: no cache).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    kind, expected = DATASETS[dataset]
    if dataset == "jsb":
        if data is not None:
            raise ValueError("--dataset jsb reads the music21 corpus; use jsb-pickle for a file")
    elif data is None:
        raise ValueError(f"--dataset {dataset} needs --data: {expected}")
    if kind == "music":
        if steps_ahead != 1:
            raise ValueError("steps_ahead applies to character data only")
        music = (
            load_jsb_chorales(cache_dir, max_pieces)
            if dataset == "jsb"
            else load_piano_roll_pickle(data)
        )
        sets = {s: music_set(music.splits[s]) for s in SPLITS}
        info = {"source": music.source, "unit": NoteHead.unit}
        info["pieces"] = {s: sets[s].n_items for s in SPLITS}
        info["steps"] = {s: sets[s].n_steps for s in SPLITS}
        if dataset == "jsb":
            info["split"] = {s: list(music.names[s]) for s in SPLITS}
        head = NoteHead()
        paper_key = dataset if dataset in PAPER_TABLE1 else None
        return Problem(
            dataset, head, sets["train"], MappingProxyType(sets), MappingProxyType(info), paper_key
        )
    text = load_ptb_chars(data) if dataset == "ptb" else load_text_file(data)
    head = CharHead(text.vocabulary.size, steps_ahead)
    sets = {s: text_set(text.splits[s], steps_ahead, config.eval_length) for s in SPLITS}
    train_items = text_set(text.splits["train"], steps_ahead, config.train_length)
    info = {
        "source": text.source,
        "unit": CharHead.unit,
        "vocabulary": text.vocabulary.size,
        "characters": {s: len(text.splits[s]) for s in SPLITS},
        "predicted": {s: sets[s].n_steps for s in SPLITS},
        "unknown_in_split": dict(text.unknown),
        "steps_ahead": steps_ahead,
    }
    paper_key = f"ptb-{steps_ahead}" if dataset == "ptb" else None
    paper_key = paper_key if paper_key in PAPER_TABLE1 else None
    return Problem(
        dataset, head, train_items, MappingProxyType(sets), MappingProxyType(info), paper_key
    )


def alpha_schedule(alpha0: float | jax.Array, t: jax.Array, tau: float | jax.Array) -> jax.Array:
    """alpha_t = alpha0 * tau / (tau + t): the paper's 1/t decay (t = updates made)."""
    return alpha0 * tau / (tau + t)


def method_arrays(names: Sequence[str], config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, alpha0s) per method: the paper's methods with threshold c and alpha0."""
    thresholds, alphas = [], []
    for name in names:
        method = get_method(name)  # ValueError lists the valid names
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
    """A round of updates, lax.scan over minibatches, vmapped over methods; a method whose
    `active` flag is off keeps its parameters and optimiser state."""
    is_tanh = jnp.asarray(True)

    def per_method(params, opt_state, threshold, alpha0, on, t, x, y):
        alpha = alpha_schedule(alpha0, t, tau)
        loss, omega, grads = loss_and_grads(
            params, x, y, task=head, activation=is_tanh, alpha=alpha
        )
        tx = sgd_with_clipping(threshold, learning_rate)
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        params, opt_state = optax.tree.where(on, (new_params, new_opt), (params, opt_state))
        return params, opt_state, loss, omega, new_opt[0].norm

    def update(carry, batch):
        params, opt_state, t = carry
        x, y = gather_batch(head, data, batch[0], batch[1], length)
        params, opt_state, loss, omega, norm = jax.vmap(
            per_method, in_axes=(0, 0, 0, 0, 0, None, None, None)
        )(params, opt_state, thresholds, alpha0s, active, t, x, y)
        return (params, opt_state, t + 1), (loss, omega, norm)

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
    params0 = init_rnn(
        jax.random.PRNGKey(config.seed), scheme, head.n_out, config.n_hidden, head.n_out
    )
    params = jax.tree.map(lambda a: jnp.broadcast_to(a, (n_methods, *a.shape)), params0)
    opt_state = jax.vmap(lambda p: sgd_with_clipping(1.0, config.learning_rate).init(p))(params)
    state = (params, opt_state, jnp.zeros((), jnp.float32))
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
        valid = _scores(problem, state[0], "valid")
        improved = active & np.isfinite(valid) & (valid < best)
        best_params = jax.vmap(optax.tree.where)(jnp.asarray(improved), state[0], best_params)
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
    clip = state[1][0]
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


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The hyperparameters as a plain dict (for json and printing)."""
    return dataclasses.asdict(config)


RESULT_KEYS = ("train", "valid", "test", "best_round", "rounds", "curve", "finished")


def load_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """A results json written by an earlier run, or None when there is none (or it is
    empty). A file that is not such a record is an OutputFolderError naming it; a method
    whose entry is damaged is dropped, with a warning line, to be trained again."""
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
