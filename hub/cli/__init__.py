"""The ``nrhub`` command line (hub/cli/main.py); its command groups are the modules beside it."""

from __future__ import annotations

import argparse


def usage(parser: argparse.ArgumentParser) -> int:
    """A command group run without its command: its help, and exit status 2."""
    parser.print_help()
    return 2
