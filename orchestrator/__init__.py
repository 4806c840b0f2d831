"""Event-streaming journey orchestrator for omnichannel retail marketing."""

__version__ = "0.1.0"
