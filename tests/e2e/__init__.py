"""Tests of the whole pipeline end to end: kiosks, broker, ingest, console."""
