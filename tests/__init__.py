"""Warmcard test suite."""
