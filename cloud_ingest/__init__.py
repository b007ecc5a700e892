"""The cloud side: ingest pipeline, registry, alerts, console, operations and web app."""
