"""The window tests here drive the real app on the qasync loop of tests/ui (one per session)."""

from tests.ui.conftest import qloop

__all__ = ["qloop"]
