"""pascanu_jax: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent
neural networks", in JAX.

    import optax, pascanu_jax as pj
    tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.sgd(0.01))
"""

from pascanu_jax.analysis.dynamics import (
    Bifurcations,
    basin_boundary,
    bifurcations,
    fixed_point_branches,
    fixed_points,
    is_stable,
    iterate_map,
    one_unit_map,
)
from pascanu_jax.analysis.error_surface import Descent, OneUnitProblem, descent, error_surface_grid
from pascanu_jax.analysis.gradient_flow import (
    GradientFlow,
    measure_gradient_flow,
    temporal_contributions,
)
from pascanu_jax.clipping import PascanuClipState, clip_by_pascanu_norm
from pascanu_jax.flax_cell import PascanuRNNCell
from pascanu_jax.initializers import SCHEMES, InitScheme, get_scheme, init_rnn, spectral_radius
from pascanu_jax.losses import Head, Padded
from pascanu_jax.methods import METHODS, Method, clip_state, get_method, sgd_with_clipping
from pascanu_jax.natural import TrainConfig, alpha_schedule, load_problem, train_methods
from pascanu_jax.natural.music import (
    MusicData,
    load_jsb_chorales,
    load_piano_roll_pickle,
    piano_roll,
    pitch_sets_from_score,
)
from pascanu_jax.natural.sequence_model import (
    CharHead,
    NoteHead,
    SequenceSet,
    gather_batch,
    music_set,
    sequence_nll,
    text_set,
)
from pascanu_jax.natural.text import TextData, Vocabulary, load_ptb_chars, load_text_file
from pascanu_jax.regularizer import (
    bptt,
    error_one_step_back,
    jacobian_norm_ratios,
    loss_and_grads,
    omega,
)
from pascanu_jax.rnn import activate, activation_derivative, readout, rnn_states
from pascanu_jax.step import init_opt_state, rnn_gradients, sgd_step
from pascanu_jax.tasks import TASK_NAMES, Task, get_task

__all__ = [
    "METHODS",
    "SCHEMES",
    "TASK_NAMES",
    "Bifurcations",
    "CharHead",
    "Descent",
    "GradientFlow",
    "Head",
    "InitScheme",
    "Method",
    "MusicData",
    "NoteHead",
    "OneUnitProblem",
    "Padded",
    "PascanuClipState",
    "PascanuRNNCell",
    "SequenceSet",
    "Task",
    "TextData",
    "TrainConfig",
    "Vocabulary",
    "activate",
    "activation_derivative",
    "alpha_schedule",
    "basin_boundary",
    "bifurcations",
    "bptt",
    "clip_by_pascanu_norm",
    "clip_state",
    "descent",
    "error_one_step_back",
    "error_surface_grid",
    "fixed_point_branches",
    "fixed_points",
    "gather_batch",
    "get_method",
    "get_scheme",
    "get_task",
    "init_opt_state",
    "init_rnn",
    "is_stable",
    "iterate_map",
    "jacobian_norm_ratios",
    "load_jsb_chorales",
    "load_piano_roll_pickle",
    "load_problem",
    "load_ptb_chars",
    "load_text_file",
    "loss_and_grads",
    "measure_gradient_flow",
    "music_set",
    "omega",
    "one_unit_map",
    "piano_roll",
    "pitch_sets_from_score",
    "readout",
    "rnn_gradients",
    "rnn_states",
    "sequence_nll",
    "sgd_step",
    "sgd_with_clipping",
    "spectral_radius",
    "temporal_contributions",
    "text_set",
    "train_methods",
]
