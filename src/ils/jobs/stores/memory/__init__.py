"""The in-memory job store: the local store's behaviour without a database, for tests."""
