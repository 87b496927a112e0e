"""keyring backends for tests: a working keychain that lives in a dict, and a way to make it
(or keyring's own `fail` backend, "no keychain at all") the one the app finds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A working keychain that lives in a dict. Its negative priority means keyring never
    picks it as anybody's default."""

    priority = -10.0

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


@contextlib.contextmanager
def installed(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    """`backend` is what `keyring.get_keyring()` returns (as the app asks for it) until the
    block ends; then the previous one is back."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
