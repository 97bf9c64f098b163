"""``python -m ils`` runs the CLI."""

from ils.cli import main

main()
