"""Icons and desktop files, shipped inside the package as `desktop_chat.resources`."""

from importlib.resources import as_file, files
from pathlib import Path


def path(name: str) -> Path:
    """A real file path for a resource (the wheel and PyInstaller keep them as files)."""
    with as_file(files(__name__) / name) as found:
        return Path(found)
