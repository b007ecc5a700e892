"""Tests of cloud_ingest.web."""
