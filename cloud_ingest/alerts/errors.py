"""Errors of the alerts package, rooted in IngestError."""

from __future__ import annotations

from cloud_ingest.errors import IngestError
from warmcard.errors import problem_lines


class AlertError(IngestError):
    """Root of the alerts errors."""


class FlagImportError(AlertError):
    """Bad rows in a flags CSV, so nothing was imported; one `file:line: problem` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = problem_lines(problems)
        super().__init__(
            f"标记导入失败，未导入任何内容 Flag import failed, nothing imported:\n{listed}"
        )


class UnknownSubject(AlertError):
    """No such alert or person in the areas the caller may see."""
