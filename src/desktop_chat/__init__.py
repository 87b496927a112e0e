"""desktop-chat: a native desktop chat client for OpenAI-compatible servers."""

from __future__ import annotations

APP_NAME = "desktop-chat"
APP_DISPLAY_NAME = "Desktop Chat"
ORG_NAME = "desktop-chat"


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed package's metadata on first use: importing
    importlib.metadata (and the email parser it brings) costs ~20 ms, which the window's first
    frame does without (issue #18)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("desktop-chat")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
