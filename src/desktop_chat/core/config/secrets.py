"""API keys: in the OS keychain, else for this session only, never in the settings file.

Keys live in the system keychain through `keyring` (service "desktop-chat", one entry per
profile, named by `Profile.key_ref`). Without a keychain (Linux without a Secret Service, a
headless box) the app says so plainly and offers the environment variable or keeping the key
in memory for this session; a plain-text file only after the user accepted a warning.

Every key this module sees is handed to `on_secret` first, so that logging redacts it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_chat.core.config.providers import Profile
from desktop_chat.core.config.settings import RUN_PROFILE_ID

if TYPE_CHECKING:  # keyring itself is imported with the first lookup, off the first frame
    from keyring.backend import KeyringBackend

log = logging.getLogger("desktop_chat.secrets")

SERVICE = "desktop-chat"
PLAINTEXT_FILE = "api-keys-UNENCRYPTED.json"
PROBE_TIMEOUT_S = 10.0  # a keychain that has not answered by then is treated as absent
_PROBE_ENTRY = "desktop-chat-probe"  # looked up (never written) to see that the keychain works
_ALTERNATIVES = (
    "You can use a key from an environment variable (such as OPENAI_API_KEY), or keep the "
    "key for this session only."
)


class KeySource(enum.StrEnum):
    KEYCHAIN = "keychain"
    ENVIRONMENT = "environment"
    SESSION = "session"  # in memory until the app quits
    PLAINTEXT = "plaintext"  # the user accepted the warning
    NONE = "none"


@dataclass(frozen=True, slots=True)
class KeychainStatus:
    available: bool
    backend: str  # keyring's name for it, e.g. "SecretService Keyring"
    reason: str = ""  # why it is not available, in the user's words, with what to do


class SecretsError(Exception):
    """A key could not be stored or removed; `message` is shown to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Secrets:
    """Where each profile's key comes from, and where a key the user enters goes.

    `backend` is keyring's default when None (probed once, on first use, in a helper thread
    so that a keychain that never answers cannot hang the app). Lookups go: this session,
    the keychain, the plain-text file (only when accepted), the profile's environment
    variable (first, for the command line's run-only profile)."""

    def __init__(
        self,
        data_dir: Path,
        environ: Mapping[str, str],
        backend: KeyringBackend | None = None,
        on_secret: Callable[[str], None] | None = None,
        *,
        plaintext_accepted: bool = False,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._data_dir = data_dir
        self._environ = environ
        self._backend = backend
        self._on_secret = on_secret or (lambda _key: None)
        self._probe_timeout_s = probe_timeout_s
        self._session: dict[str, str] = {}
        self._status: KeychainStatus | None = None
        self.plaintext_accepted = plaintext_accepted  # Settings.plaintext_keys_accepted

    @property
    def plaintext_path(self) -> Path:
        """Where keys go when the user chose plain text (for the warning to name it)."""
        return self._data_dir / PLAINTEXT_FILE

    def status(self) -> KeychainStatus:
        if self._status is None:
            self._status, self._backend = _open_keychain(self._backend, self._probe_timeout_s)
            log.info("keychain: %s", self._status)
        return self._status

    def get(self, profile: Profile) -> tuple[str | None, KeySource]:
        key, source = self._lookup(profile)
        if key is not None:
            self._on_secret(key)
        return key, source

    def get_ref(self, ref: str) -> str | None:
        """A secret kept under `ref` that belongs to no profile (an MCP server's token):
        this session's, else the keychain's, else the accepted plain-text file's."""
        key = (self._session.get(ref) or self._from_keychain(ref)
               or (self._read_plaintext().get(ref) if self.plaintext_accepted else None))
        if key:
            self._on_secret(key)
        return key or None

    def redact(self, key: str) -> None:
        """A key used without being kept (typed for a check): logging redacts it too, since
        a server that rejects a key may quote it back."""
        if key.strip():
            self._on_secret(key.strip())

    def store(self, ref: str, key: str, where: KeySource, *,
              plaintext_accepted: bool = False) -> None:
        """Keep `key` for the profile whose `key_ref` is `ref`. Raises SecretsError with
        text for the user when it cannot be kept there."""
        key, where = key.strip(), KeySource(where)  # a Qt signal may carry the plain string
        if not key:
            raise SecretsError("The key is empty. Paste the whole key and try again.")
        self._on_secret(key)
        if where is KeySource.SESSION:
            self._session[ref] = key
        elif where is KeySource.KEYCHAIN:
            self._store_in_keychain(ref, key)
            self._session.pop(ref, None)
            self._drop_plaintext(ref)
        elif where is KeySource.PLAINTEXT:
            if not (plaintext_accepted or self.plaintext_accepted):
                raise SecretsError("The key was not saved: keys are only written to a "
                                   "plain-text file after you accept the warning.")
            self.plaintext_accepted = True
            self._write_plaintext({**self._read_plaintext(), ref: key})
            self._session.pop(ref, None)
        else:
            raise ValueError(f"a key cannot be stored in {where}")

    def forget(self, ref: str) -> None:
        """Remove the key everywhere this app keeps it (not from the environment)."""
        from keyring.errors import PasswordDeleteError

        self._session.pop(ref, None)
        self._drop_plaintext(ref)
        if not self.status().available:
            return
        assert self._backend is not None
        try:
            self._backend.delete_password(SERVICE, ref)
        except PasswordDeleteError:
            pass  # there was none
        except Exception as exc:
            log.error("keychain: cannot delete the key of %r: %s", ref, exc)
            raise SecretsError(
                f"The key could not be removed from the keychain ({exc}). Remove the "
                f"\"{SERVICE}\" entry for \"{ref}\" with your system's keychain tool."
            ) from exc

    def _lookup(self, profile: Profile) -> tuple[str | None, KeySource]:
        ref = profile.key_ref
        if key := self._session.get(ref):
            return key, KeySource.SESSION
        if profile.id == RUN_PROFILE_ID and profile.key_env and (
                key := self._environ.get(profile.key_env, "").strip()):
            # `--base-url` / OPENAI_BASE_URL with the key in the environment: that key is this
            # run's, and the keychain is not even opened (its probe loads secretstorage,
            # jeepney and cryptography: 11 MiB and CPU while the window starts)
            return key, KeySource.ENVIRONMENT
        if key := self._from_keychain(ref):
            return key, KeySource.KEYCHAIN
        if self.plaintext_accepted and (key := self._read_plaintext().get(ref)):
            return key, KeySource.PLAINTEXT
        if profile.key_env and (key := self._environ.get(profile.key_env, "").strip()):
            return key, KeySource.ENVIRONMENT
        return None, KeySource.NONE

    def _from_keychain(self, ref: str) -> str | None:
        if not self.status().available:
            return None
        assert self._backend is not None
        try:
            return self._backend.get_password(SERVICE, ref) or None
        except Exception as exc:  # a locked or vanished keychain: fall back, say why in the log
            log.warning("keychain: cannot read the key of %r: %s", ref, exc)
            return None

    def _store_in_keychain(self, ref: str, key: str) -> None:
        status = self.status()
        if not status.available:
            raise SecretsError(f"The key was not saved. {status.reason}")
        assert self._backend is not None
        try:
            self._backend.set_password(SERVICE, ref, key)
        except Exception as exc:
            log.error("keychain: cannot save the key of %r: %s", ref, exc)
            raise SecretsError(
                f"The key could not be saved in the keychain ({exc}). Unlock the keychain "
                f"and try again, or keep the key for this session only."
            ) from exc

    def _read_plaintext(self) -> dict[str, str]:
        try:
            data = json.loads(self.plaintext_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("keys: cannot read %s: %s", self.plaintext_path.name, type(exc).__name__)
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _write_plaintext(self, keys: dict[str, str]) -> None:
        """Atomically, readable by the user alone (mode 0600) from the first byte."""
        path = self.plaintext_path
        if not keys:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        self._data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file already there
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(keys, file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.error("keys: cannot write %s: %s", path.name, exc)
            raise SecretsError(f"The key could not be saved in {path} ({exc.strerror}). "
                               "Keep it for this session only.") from exc

    def _drop_plaintext(self, ref: str) -> None:
        keys = self._read_plaintext()
        if ref in keys:
            del keys[ref]
            self._write_plaintext(keys)


def _open_keychain(
    backend: KeyringBackend | None, timeout_s: float
) -> tuple[KeychainStatus, KeyringBackend | None]:
    """Find and try the keychain in a daemon thread: D-Bus or a keychain daemon that never
    answers must not hang the app, it only makes the keychain unavailable."""
    outcome: list[tuple[KeychainStatus, KeyringBackend | None]] = []
    thread = threading.Thread(target=lambda: outcome.append(_try_keychain(backend)),
                              name="keychain-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if outcome:
        return outcome[0]
    log.error("keychain: no answer within %.0f s", timeout_s)
    name = type(backend).name if backend is not None else "unknown"
    return KeychainStatus(False, name, f"The keychain did not answer within {timeout_s:g} "
                          f"seconds, so keys are not saved in it. {_ALTERNATIVES}"), None


def _try_keychain(backend: KeyringBackend | None) -> tuple[KeychainStatus, KeyringBackend | None]:
    import keyring
    from keyring.backends import chainer, fail, null
    from keyring.errors import KeyringLocked

    try:
        backend = backend or keyring.get_keyring()
    except Exception as exc:  # e.g. a broken keyringrc.cfg
        log.error("keychain: keyring failed to start: %s", exc)
        return KeychainStatus(False, "unknown", _no_keychain()), None
    name = type(backend).name
    if isinstance(backend, null.Keyring):
        return KeychainStatus(False, name, "The keychain is turned off in the keyring "
                              f"configuration, so keys are not saved in it. {_ALTERNATIVES}"), None
    if isinstance(backend, fail.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        return KeychainStatus(False, name, _no_keychain()), None
    try:
        type(backend).priority  # noqa: B018 - raises RuntimeError when unusable here
        backend.get_password(SERVICE, _PROBE_ENTRY)
    except KeyringLocked:
        return KeychainStatus(False, name, "The keychain is locked and was not unlocked, so "
                              f"keys are not saved in it. {_ALTERNATIVES}"), None
    except Exception as exc:  # D-Bus without a Secret Service, a keychain daemon that died...
        log.warning("keychain: %s does not work: %s", name, exc)
        return KeychainStatus(False, name, _no_keychain()), None
    return KeychainStatus(True, name), backend


def _no_keychain() -> str:
    where = (
        " (no Secret Service, such as GNOME Keyring or KWallet, is running on this Linux "
        "desktop)"
        if sys.platform.startswith("linux")
        else " on this system"
    )
    return f"No keychain is available{where}, so keys cannot be saved safely. {_ALTERNATIVES}"
