"""Every error of cloud_ingest, rooted at IngestError; library errors are translated at the edge."""

from __future__ import annotations

from warmcard.errors import WarmcardError, problem_lines


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

    def __init__(
        self, problems: list[tuple[str, int, str]], people: list[tuple[object, ...]] | None = None
    ) -> None:
        self.problems = problems
        self.people = people or []  # the people rows that passed, for a preview beside problems
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


class ConsoleError(IngestError):
    """Root of the console's errors (areas, accounts, exports)."""


class AreaError(ConsoleError):
    """An area path or area record is invalid; the message names it."""


class AreaImportError(AreaError):
    """Bad rows in an area CSV, so nothing was imported; one `file:line: problem` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = problem_lines(problems)
        super().__init__(
            f"区域导入失败，未导入任何内容 Area import failed, nothing imported:\n{listed}"
        )


class AccountError(ConsoleError):
    """A user or grant cannot be created or changed as asked; the message says why."""


class PasswordRejected(AccountError):
    """A new password breaks the password policy; the message says which rule."""


class HandMealRefused(ConsoleError):
    """A meal recorded by hand (补录) refused: `status` 400 (bad input) or 409 (recorded)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class ExportError(ConsoleError):
    """A report cell cannot be written (e.g. a naive datetime or NaN)."""


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


class NotifyTargetError(AlertError):
    """A notification target refused (bad address, kind or area); nothing was saved."""


class DeliveryError(AlertError):
    """One attempt to deliver a notification failed; the message says why (it is retried)."""


class BackupError(IngestError):
    """A backup or restore could not be made as asked; the message says what to do next."""


class BackupUnverified(BackupError):
    """A backup's files do not match its manifest, so nothing was restored; one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = problem_lines(problems)
        super().__init__(
            f"备份校验失败，未恢复任何内容 Backup does not verify, nothing restored:\n{listed}"
        )
