"""The app database: engine, SQLite driver, transactions, migrations."""
