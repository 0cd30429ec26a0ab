"""Brygga: a regional life-science platform over structured health data."""

__version__ = "0.1.0"
