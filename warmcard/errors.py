"""Root of every Warmcard exception; each package's errors module derives from it."""


class WarmcardError(Exception):
    """Something went wrong that Warmcard can name. The message says what to do next."""
