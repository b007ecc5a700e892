"""Tests of cloud_ingest.console."""
