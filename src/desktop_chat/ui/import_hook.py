"""PySide6's import hook, and how the app does without it.

Once PySide6 is imported it replaces `builtins.__import__` with its own function (for its
opt-in `from __feature__ import snake_case, true_property`). After every import it then reads
the new module's whole source file (`inspect.getsource`) to note whether it mentions
"PySide6". The app selects no feature, so those notes are never used, but the reading costs
start-up ~25-50 ms for the ~170 modules the app imports after PySide6 (issue #18), and
kept every one's source lines in memory (`linecache`: 7 MiB of text once the SDK is loaded).

It also made the openai SDK fail to load: `inspect` asks each module for `__wrapped__`, and
pydantic answers unknown names by importing one of its own modules, which, when that module
was itself half imported by the SDK's helper thread, failed ("cannot import name
'import_string' from partially initialized module"): 1 start in 16-32 with a prompt sent at
once. With the hook on, pydantic must be imported whole on the main thread first (see
`app.open_window`).

Without the hook, shiboken treats every module as "no feature selected" (its
`getFeatureSelectId` falls back to the last selection, which stays 0 when no module selects
one): Qt calls behave exactly as before.
"""

from __future__ import annotations

import builtins

import PySide6.QtCore  # noqa: F401  (installs the hook: it is taken out just below)


def is_active() -> bool:
    """True while PySide6 reads each imported module's source."""
    feature_import = getattr(builtins, "__feature_import__", None)
    return feature_import is not None and builtins.__import__ is feature_import


def take_out() -> bool:
    """Put back the import PySide6 wrapped (its own lazy loader of Qt modules stays).
    False when there was no hook to take out (e.g. a PySide6 that works differently)."""
    original = getattr(builtins, "__orig_import__", None)
    if not is_active() or original is None:
        return False
    builtins.__import__ = original
    return True
