"""PyInstaller entry point: the same `main` as the `desktop-chat` console/gui script."""

import sys

from desktop_chat.launch import main

if __name__ == "__main__":
    sys.exit(main())
