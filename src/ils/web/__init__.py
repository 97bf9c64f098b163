"""The web app: FastAPI factory (``app.py``), dependencies (``deps.py``), security,
error handling and the API routers (``routers/``).

Start with :func:`ils.web.app.create_app`; router authors read ``deps.py``.
"""
