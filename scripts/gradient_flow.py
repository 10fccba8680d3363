"""The gradient norm flowing back across time steps, before and after training.

The command lives in pascanu_jax/cli/gradient_flow.py; `pascanu-jax gradient-flow` runs
it too.
`python scripts/gradient_flow.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("gradient_flow"))
