"""desktop-chat: a native desktop chat client for OpenAI-compatible servers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("desktop-chat")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

APP_NAME = "desktop-chat"
APP_DISPLAY_NAME = "Desktop Chat"
ORG_NAME = "desktop-chat"
