"""The command line: every script's `main(argv)` lives here, and `pascanu-jax <command>`
(or `python -m pascanu_jax <command>`) runs it. The library below knows nothing of flags;
these modules parse them, call the library, print, and turn the library's errors into one
line each.

    pascanu-jax sweep           Fig. 7: success rate against sequence length
    pascanu-jax generalize      §4.1.1: train on [50, 200), test up to 5000 steps
    pascanu-jax natural         §4.2, Table 1: music and text, the three methods
    pascanu-jax error-surface   Fig. 6: the one-unit error surface and descent
    pascanu-jax gradient-flow   gradient norms across time, before and after training
    pascanu-jax bifurcation     Fig. 3: the one-unit map's fixed points and basins
    pascanu-jax report          Markdown tables from results JSON
"""

from __future__ import annotations

import importlib
import sys
from types import MappingProxyType

COMMANDS = MappingProxyType(
    {
        "sweep": ("sweep", "Fig. 7: success rate against sequence length"),
        "generalize": ("generalize", "§4.1.1: train on [50, 200), test up to 5000 steps"),
        "natural": ("natural", "§4.2, Table 1: music and text, the three methods"),
        "error-surface": ("error_surface", "Fig. 6: the one-unit error surface and descent"),
        "gradient-flow": ("gradient_flow", "gradient norms across time steps"),
        "bifurcation": ("bifurcation", "Fig. 3: the one-unit map's fixed points and basins"),
        "report": ("report", "Markdown tables from results JSON"),
    }
)


def _usage() -> str:
    lines = ["usage: pascanu-jax <command> [options]   (pascanu-jax <command> --help)", ""]
    lines += [f"  {name:14s} {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def run_command(module: str, argv: list[str] | None = None) -> int:
    """Run `pascanu_jax.cli.<module>.main(argv)`; its exit status (0 unless it returns one)."""
    status = importlib.import_module(f"pascanu_jax.cli.{module}").main(argv)
    return status if isinstance(status, int) else 0


def main(argv: list[str] | None = None) -> int:
    """`pascanu-jax <command> [options]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"pascanu-jax: unknown command {name!r}; one of {', '.join(COMMANDS)}", file=sys.stderr
        )
        return 2
    program, sys.argv[0] = sys.argv[0], f"pascanu-jax {name}"  # argparse's program name
    try:
        return run_command(COMMANDS[name][0], rest)
    finally:
        sys.argv[0] = program
