"""Tests of cloud_ingest.pipeline."""
