"""§4.2 (Table 1): the natural problems, MSGD, MSGD+C and MSGD+CR side by side.

The command lives in pascanu_jax/cli/natural.py; this file and `pascanu-jax natural` run it.
`python scripts/natural.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("natural"))
