"""Where the repository's files are, for tests that read docs, configs and benches."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
