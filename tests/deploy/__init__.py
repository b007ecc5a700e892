"""Tests of the shipped systemd units and production broker config."""
