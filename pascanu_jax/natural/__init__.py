"""The natural problems of §4.2 (Table 1): polyphonic music and character-level text,
their data, the sequence model with its output layers, and the trainer that runs the three
methods side by side.

    music.py           piano rolls (JSB chorales from music21, or the authors' pickles)
    text.py            character data (Penn Treebank, or any text file)
    sequence_model.py  per-step output layers (sigmoid notes, softmax characters), batches
    problems.py        the data-set registry, Table 1's numbers, hyperparameters, loading
    trainer.py         the three methods trained side by side: sampler, rounds, results

Importing `pascanu_jax` does not import this package; `import pascanu_jax.natural` does.
"""

from pascanu_jax.natural import music, problems, sequence_model, text, trainer
from pascanu_jax.natural.problems import (
    DATASETS,
    PAPER_NAMES,
    PAPER_TABLE1,
    PRESETS,
    Problem,
    TrainConfig,
    config_dict,
    default_config,
    load_problem,
)
from pascanu_jax.natural.trainer import (
    METHOD_NAMES,
    ItemSampler,
    alpha_schedule,
    load_results,
    method_arrays,
    train_methods,
)

__all__ = [
    "DATASETS",
    "METHOD_NAMES",
    "PAPER_NAMES",
    "PAPER_TABLE1",
    "PRESETS",
    "ItemSampler",
    "Problem",
    "TrainConfig",
    "alpha_schedule",
    "config_dict",
    "default_config",
    "load_problem",
    "load_results",
    "method_arrays",
    "music",
    "problems",
    "sequence_model",
    "text",
    "train_methods",
    "trainer",
]
