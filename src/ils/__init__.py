"""ILS: the background job system of an optical-lab platform."""

__version__ = "0.1.0"
