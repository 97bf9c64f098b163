"""The platform's data: SQLAlchemy models on ``ils.db.engine.Base``, one module per area.

Import the area modules directly (``from ils.domain.orders import Order``);
``ils.db.tables`` imports them all so Alembic sees every table.
"""
