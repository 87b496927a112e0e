"""Logging to a rotating file in the data dir, with secrets redacted; the window redacts
what it shows with the same function (`redact_secrets`)."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

LOG_FILE = "desktop-chat.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Well-known key shapes, redacted even when the app was never told the key: OpenAI-style `sk-`
# keys (also Anthropic, OpenRouter, DeepSeek), bearer tokens, key=value / "api_key": "..." pairs,
# and the prefixed keys of other providers and code hosts (Google, Groq, xAI, Perplexity,
# Hugging Face, Replicate, NVIDIA, GitHub, AWS, Slack). A shape must start at a word boundary,
# so "task-manager" does not lose its tail.
_SECRET_PATTERNS = [
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-*]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]{6,}"),
    re.compile(r"(?<![A-Za-z0-9])(?:AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{20,}"
               r"|xai-[A-Za-z0-9]{20,}|pplx-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}"
               r"|r8_[A-Za-z0-9]{20,}|nvapi-[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
               r"|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9\-]{10,})"),
]


# Every secret this process has been told about; shared by all our formatters, so a key
# entered at run time is redacted from then on. A tuple, rebound whole: a logging thread
# never sees it half-updated.
_known: tuple[str, ...] = ()


def add_secret(secret: str) -> None:
    """Redact `secret` (e.g. a key the user just typed) from every later log line. Strings
    shorter than 4 characters are ignored: redacting them would garble ordinary text."""
    global _known
    secret = secret.strip()
    if len(secret) >= 4 and secret not in _known:
        # longest first, so that a secret containing another one is removed whole
        _known = tuple(sorted((*_known, secret), key=len, reverse=True))


class RedactingFormatter(logging.Formatter):
    """Formats a record, tracebacks included, then removes secrets from the text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(_FORMAT)
        for secret in secrets:
            add_secret(secret)

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def redact_secrets(text: str) -> str:
    """`text` with every secret this process knows of, and anything shaped like one,
    replaced: what the log file gets, what the window shows of a server's or a model's words
    (an error body that quotes the key), and what the history stores or exports of any string
    a server or a tool sent (error messages and bodies, tool results)."""
    return redact(text, _known)


def known_secrets() -> tuple[str, ...]:
    """The keys `add_secret` was told about, for a helper process that must redact alike."""
    return _known


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


def _file_handler(log_dir: Path) -> tuple[Path, logging.Handler]:
    """The log file in `log_dir`; where that cannot be written (a read-only data folder), in
    the system's temporary folder, so "details are in the log" stays true."""
    fallback = Path(tempfile.gettempdir()) / "desktop-chat-logs"
    for folder in (log_dir, fallback):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return folder / LOG_FILE, logging.handlers.RotatingFileHandler(
                folder / LOG_FILE, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        except OSError as exc:
            if sys.stderr is not None:  # None in a windowed (frozen) build
                print(f"desktop-chat: cannot log to {folder}: {exc}", file=sys.stderr)
    return fallback / LOG_FILE, logging.NullHandler()


def setup(log_dir: Path, secrets: Iterable[str], level: int = logging.INFO) -> Path:
    """Route the app's and the SDK's logs to one file. Calling it again replaces the handlers;
    secrets given once stay redacted (see `add_secret`)."""
    for secret in secrets:
        add_secret(secret)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_desktop_chat", False)]:
        root.removeHandler(handler)
        handler.close()
    path, file_handler = _file_handler(log_dir)
    handlers: list[logging.Handler] = [file_handler]
    if sys.stderr is not None:  # None in a windowed (frozen) build
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(RedactingFormatter())
        handler._desktop_chat = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.level else level)
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
