"""Errors of the console foundations (areas, accounts, exports, i18n), rooted in WarmcardError."""

from __future__ import annotations

from warmcard.errors import WarmcardError, problem_lines


class ConsoleError(WarmcardError):
    """Root of the console's errors."""


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


class ExportError(ConsoleError):
    """A report cell cannot be written (e.g. a naive datetime or NaN)."""
