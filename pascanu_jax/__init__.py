"""pascanu_jax: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent
neural networks", in JAX.

    import optax, pascanu_jax as pj
    tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.sgd(0.01))

Importing the package loads the core (the network, initialisations, clipping, Omega, BPTT,
tasks, methods, the Flax cell) and the multi-run engine (`train`, `EngineConfig`,
`RunSpec`). The natural problems (`pascanu_jax.natural`, which reads music21 and data files)
and the analyses (`pascanu_jax.analysis`) load on first use of one of their names here,
e.g. `pj.load_jsb_chorales` or `pj.bifurcations` (PEP 562).
"""

import importlib

from pascanu_jax.clipping import (
    MeanNormClipState,
    PascanuClipState,
    clip_by_mean_norm,
    clip_by_pascanu_norm,
)
from pascanu_jax.experiments.engine import EngineConfig, RunSpec
from pascanu_jax.experiments.runner import train
from pascanu_jax.flax_cell import PascanuRNNCell
from pascanu_jax.initializers import SCHEMES, InitScheme, get_scheme, init_rnn, spectral_radius
from pascanu_jax.losses import Head, Objective, Padded
from pascanu_jax.methods import (
    CLIPS,
    METHODS,
    OPTIMIZERS,
    Method,
    UpdateRule,
    clip_state,
    get_method,
    method_transform,
    parse_method,
    sgd_with_clipping,
)
from pascanu_jax.regularizer import (
    bptt,
    error_one_step_back,
    jacobian_norm_ratios,
    loss_and_grads,
    omega,
)
from pascanu_jax.rnn import activate, activation_derivative, readout, rnn_states
from pascanu_jax.step import init_opt_state, rnn_gradients, sgd_step, train_step
from pascanu_jax.tasks import TASK_NAMES, Task, constant_baseline, get_task

# Top-level names whose modules load on first use: module -> names.
_LAZY_MODULES = {
    "pascanu_jax.analysis.dynamics": (
        "Bifurcations",
        "basin_boundary",
        "bifurcations",
        "fixed_point_branches",
        "fixed_points",
        "is_stable",
        "iterate_map",
        "one_unit_map",
    ),
    "pascanu_jax.analysis.error_surface": (
        "Descent",
        "OneUnitProblem",
        "descent",
        "error_surface_grid",
    ),
    "pascanu_jax.analysis.gradient_flow": (
        "GradientFlow",
        "measure_gradient_flow",
        "temporal_contributions",
    ),
    "pascanu_jax.natural": ("TrainConfig", "alpha_schedule", "load_problem", "train_methods"),
    "pascanu_jax.natural.music": (
        "MusicData",
        "load_jsb_chorales",
        "load_piano_roll_pickle",
        "piano_roll",
        "pitch_sets_from_score",
    ),
    "pascanu_jax.natural.sequence_model": (
        "CharHead",
        "CharPrediction",
        "NoteHead",
        "NotePrediction",
        "SequenceSet",
        "gather_batch",
        "music_set",
        "sequence_nll",
        "text_set",
    ),
    "pascanu_jax.natural.text": ("TextData", "Vocabulary", "load_ptb_chars", "load_text_file"),
}
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}
_SUBPACKAGES = ("analysis", "cli", "experiments", "natural", "outputs")


def __getattr__(name: str):
    """Load a lazy top-level name (or subpackage) on first use and keep it."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


__all__ = [
    "CLIPS",
    "METHODS",
    "OPTIMIZERS",
    "SCHEMES",
    "TASK_NAMES",
    "EngineConfig",
    "Head",
    "InitScheme",
    "MeanNormClipState",
    "Method",
    "Objective",
    "Padded",
    "PascanuClipState",
    "PascanuRNNCell",
    "RunSpec",
    "Task",
    "UpdateRule",
    "activate",
    "activation_derivative",
    "bptt",
    "clip_by_mean_norm",
    "clip_by_pascanu_norm",
    "clip_state",
    "constant_baseline",
    "error_one_step_back",
    "get_method",
    "get_scheme",
    "get_task",
    "init_opt_state",
    "init_rnn",
    "jacobian_norm_ratios",
    "loss_and_grads",
    "method_transform",
    "omega",
    "parse_method",
    "readout",
    "rnn_gradients",
    "rnn_states",
    "sgd_step",
    "sgd_with_clipping",
    "spectral_radius",
    "train",
    "train_step",
    *sorted(_LAZY),
]
