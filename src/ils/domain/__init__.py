"""The platform's data: SQLAlchemy models on ``ils.database.Base``, one module per area.

Import the area modules directly (``from ils.domain.orders import Order``);
``ils.models`` imports them all so Alembic sees every table.
"""
