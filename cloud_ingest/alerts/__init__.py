"""Alerts: device health, well-being "visit due" and anti-fraud checks, kept in SQLite.

engine.AlertEngine ties them together; the ingest service owns one (see docs/alerts.md).
"""
