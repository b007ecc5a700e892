"""The ingest pipeline: MQTT in, validate, conflict-check, store, acknowledge; live state."""
