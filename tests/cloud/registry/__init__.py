"""Tests of cloud_ingest.registry."""
