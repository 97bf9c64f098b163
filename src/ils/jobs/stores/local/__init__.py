"""The local job store: jobs in the app database (SQLite or PostgreSQL)."""
