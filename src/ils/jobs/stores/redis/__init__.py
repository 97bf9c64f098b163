"""The Redis job store: BullMQ's data layout, shared with the TypeScript workers."""
