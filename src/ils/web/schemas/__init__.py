"""Pydantic request and response models of the platform API, one module per area."""
