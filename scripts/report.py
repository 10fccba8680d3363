"""Markdown tables of the reproduction from the committed results JSON.

The command lives in pascanu_jax/cli/report.py; this file and `pascanu-jax report` run it.
`python scripts/report.py --help` lists the options.
"""

import sys

from pascanu_jax.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("report"))
