"""The password policy for console accounts: length, placeholders, runs, the username."""

from __future__ import annotations

from cloud_ingest.errors import PasswordRejected
from warmcard.settings import PLACEHOLDER_SECRETS

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a login form from being a DoS lever


_COMMON_WORDS = PLACEHOLDER_SECRETS | frozenset(
    [
        "admin",
        "administrator",
        "warmcard",
        "passw0rd",
        "password",
        "changeme",
        "letmein",
        "welcome",
        "qwerty",
        "abc",
        "abcd",
        "iloveyou",
        "woaini",
        "dali",
        "root",
        "test",
        "user",
        "guest",
        "default",
        "example",
    ]
)
_RUNS = [
    "0123456789",
    "1234567890",
    "9876543210",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "abcdefghij",
]


def check_password_policy(password: str, username: str = "") -> None:
    """Raise PasswordRejected if a new password is too short, a placeholder or guessable."""
    if len(password) < MIN_PASSWORD:
        raise PasswordRejected(f"密码太短 password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordRejected(f"密码太长 password too long: at most {MAX_PASSWORD} characters")
    lowered = password.strip().lower()
    # 'Password2024!' and 'admin123456' are the same placeholder with decoration.
    core = lowered.rstrip("0123456789!@#$%^&*.?-_ ")
    if len(set(lowered)) <= 2:
        raise PasswordRejected("密码过于简单 password is one or two characters repeated")
    if lowered in _COMMON_WORDS or core in _COMMON_WORDS:
        raise PasswordRejected("密码是常见占位符 password is a common placeholder; choose another")
    if any(lowered in run for run in _RUNS):
        raise PasswordRejected("密码是键盘或数字序列 password is a keyboard or digit run")
    if username and len(username) >= 3 and username.lower() in lowered:
        raise PasswordRejected("密码不能包含用户名 password must not contain the username")
