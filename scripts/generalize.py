"""§4.1.1: train on lengths [50, 200) and test the solved models up to 5000 steps.

The command lives in pascanu_jax/cli/generalize.py; this file and `pascanu-jax generalize` run it.
`python scripts/generalize.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("generalize"))
