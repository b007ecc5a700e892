"""HTTP API of the cloud side."""
