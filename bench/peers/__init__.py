"""ILS against other Python job libraries on one Redis: ``python -m bench.peers --help``."""
