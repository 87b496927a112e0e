"""The window tests here drive the real app on the session's one qasync loop (tests/conftest.py)."""
