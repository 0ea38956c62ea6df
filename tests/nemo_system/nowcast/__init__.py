"""Estuary nowcast system: the workers and next workers module of a small
NEMO_Nowcast-style system."""

__version__ = "24.1"

#: the system's name, for its own logs
SYSTEM_NAME = "estuary"
