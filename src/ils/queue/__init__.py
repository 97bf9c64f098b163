"""The job system: queue catalogue, job types, stores, producer, runner and helpers."""
