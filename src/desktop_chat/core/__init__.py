"""Pure-Python core: no Qt, no qasync (tests/core/test_layering.py enforces it)."""
