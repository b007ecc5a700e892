"""Warmcard: check-in and meal counting for happiness courtyards and canteens."""

__version__ = "0.1.0"
