"""The HTTP side of ingest: JSON API, SSE stream and the live page."""
