"""Helpers of ``bench/users.py``: the load-generating client process and /proc readings."""
