"""Tests of cloud_ingest.ops."""
