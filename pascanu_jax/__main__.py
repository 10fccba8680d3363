"""`python -m pascanu_jax <command> [options]`: the same as `pascanu-jax`."""

import sys

from pascanu_jax.cli import main

sys.exit(main())
