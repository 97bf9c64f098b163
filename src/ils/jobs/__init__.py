"""The job system: queues, payloads, stores, producer and outbox, runner, admin, schedules."""
