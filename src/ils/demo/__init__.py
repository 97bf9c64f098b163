"""Demo data and the demo job run of the README's first command."""
