"""The natural problems of §4.2 (Table 1): polyphonic music and character-level text,
their data, the sequence model with its output layers, and the trainer that runs the three
methods side by side.

    music.py           piano rolls (JSB chorales from music21, or the authors' pickles)
    text.py            character data (Penn Treebank, or any text file)
    sequence_model.py  per-step output layers (sigmoid notes, softmax characters), batches
    trainer.py         the data-set registry, Table 1's numbers and the training loop

Importing `pascanu_jax` does not import this package; `import pascanu_jax.natural` does.
"""

from pascanu_jax.natural import music, sequence_model, text
from pascanu_jax.natural.trainer import (
    DATASETS,
    METHOD_NAMES,
    PAPER_NAMES,
    PAPER_TABLE1,
    ItemSampler,
    Problem,
    TrainConfig,
    alpha_schedule,
    config_dict,
    default_config,
    load_problem,
    load_results,
    method_arrays,
    train_methods,
)

__all__ = [
    "DATASETS",
    "METHOD_NAMES",
    "PAPER_NAMES",
    "PAPER_TABLE1",
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
    "sequence_model",
    "text",
    "train_methods",
]
