"""``python -m lmmlite`` runs the command-line interface."""

from .cli import run

run()
