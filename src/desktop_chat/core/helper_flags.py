"""The first argument that starts the app's own executable as one of its helper processes
(a frozen app has no `python -m`). `app.main` reads it before it loads anything else, so
the flags live here, apart from the modules that run the helpers."""

ENGINE_HOST_FLAG = "--engine-host"  # the offline engine's host (core/engine/offline.py)
MATH_HOST_FLAG = "--math-host"  # the formula-drawing helper (core/render/math_host.py)
IMPORT_HOST_FLAG = "--import-host"  # the history import helper (core/history/import_process.py)
