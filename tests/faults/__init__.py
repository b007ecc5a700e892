"""Fault-injection scenarios on the real pipeline."""
