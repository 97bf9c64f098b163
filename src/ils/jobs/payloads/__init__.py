"""The payload model of every job, one module per queue."""
