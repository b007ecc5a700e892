"""Tests of the wire contract and warmcard's shared leaves."""
