"""The two implementations of :class:`ils.queue.store.JobStore`."""
