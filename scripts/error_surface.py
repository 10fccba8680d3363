"""Fig. 6: the error surface of the one-unit model and descent with and without clipping.

The command lives in pascanu_jax/cli/error_surface.py; `pascanu-jax error-surface` runs
it too.
`python scripts/error_surface.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("error_surface"))
