"""Tests of cloud_ingest."""
