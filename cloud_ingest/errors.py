"""Errors of the cloud ingest service, rooted at IngestError."""

from __future__ import annotations

from warmcard.errors import WarmcardError


class IngestError(WarmcardError):
    """Root of every cloud_ingest error."""


class StorageUnavailable(IngestError):
    """The time-series store cannot be reached or is failing; retry later, drop nothing."""


class StorageRejected(IngestError):
    """The store refused the data itself (4xx); retrying the same points will not help."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RegistryError(IngestError):
    """The registry database is missing, unreadable or inconsistent."""


class ImportFailed(IngestError):
    """CSV import refused; `problems` lists every (file, line, problem). Nothing was imported."""

    def __init__(self, problems: list[tuple[str, int, str]]) -> None:
        self.problems = problems
        lines = [f"{file}:{line}: {problem}" for file, line, problem in problems]
        super().__init__(
            f"{len(problems)} problem(s), nothing imported; fix them and import again:\n"
            + "\n".join(lines)
        )


class InvalidPoint(IngestError, ValueError):
    """A value cannot be written as InfluxDB line protocol (e.g. a newline in a tag)."""


class RegistryEditError(IngestError):
    """A console edit of the registry refused (bad value or conflict); nothing was changed."""


class CardInUse(RegistryEditError):
    """The card is held by someone the editor may not change; its manager must release it."""


class ReportError(IngestError):
    """A report cannot be made for the month or area asked for."""
