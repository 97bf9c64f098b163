"""Tests of the web app (fixtures in conftest.py)."""
