"""The app's entry point: the `desktop-chat` command, `python -m desktop_chat` and the frozen
app. It imports the app the fast way, then runs `app.main` (issue #18: on screen in half a
second).

- PySide6's import hook, which reads the source of every module imported after it, is taken
  out first (`ui/import_hook.py` says why that is safe, and why pydantic then no longer has to
  be imported ahead on this thread).
- The cyclic garbage collector is off while the app's modules load: each of its passes
  would walk the objects imported so far, all of which live as long as the app. (The ~35
  modules of the window's first frame load here; `app.finish_in_turns` keeps it off for
  the ~70 others, loaded after that frame, then freezes them all, `settle_startup_objects`.)

Together (with pydantic no longer imported ahead) they took ~110 ms off the first frame
(0.83 -> 0.72 s, `benchmarks/startup.py` run back to back with the code before them).
"""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> int:
    gc.disable()
    try:
        from desktop_chat.ui import import_hook

        import_hook.take_out()
        from desktop_chat.app import main as run
    finally:
        gc.enable()
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
