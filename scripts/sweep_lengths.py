"""Reproduce Fig. 7 of Pascanu et al. (2013): rate of success against sequence length.

The command lives in pascanu_jax/cli/sweep.py; this file and `pascanu-jax sweep` run it.
`python scripts/sweep_lengths.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("sweep"))
