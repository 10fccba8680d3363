"""Fig. 3: the one-unit map's fixed points, bifurcations and basins of attraction.

The command lives in pascanu_jax/cli/bifurcation.py; this file and `pascanu-jax bifurcation` run it.
`python scripts/bifurcation.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("bifurcation"))
