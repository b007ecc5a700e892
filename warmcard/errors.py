"""Root of every Warmcard exception; each package's errors module derives from it."""


class WarmcardError(Exception):
    """Something went wrong that Warmcard can name. The message says what to do next."""


def problem_lines(problems: list[str], shown: int = 50) -> str:
    """The first `shown` problems, one a line, then how many more (a refusal stays readable)."""
    more = f"\n... and {len(problems) - shown} more" if len(problems) > shown else ""
    return "\n".join(problems[:shown]) + more
