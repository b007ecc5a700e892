"""Tests of cloud_ingest.alerts."""
