"""`Secrets`: keys in the keychain (keyring's own backends), else the environment or this
session; plain text only with consent; a missing or silent keychain said plainly."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail, null
from keyring.errors import KeyringLocked, PasswordSetError

from desktop_chat.core.config.providers import PRESETS, Profile
from desktop_chat.core.config.secrets import (
    PLAINTEXT_FILE,
    SERVICE,
    KeychainStatus,
    KeySource,
    Secrets,
    SecretsError,
)
from tests.conftest import TEST_KEY
from tests.support.keyrings import MemoryKeyring

OPENAI = PRESETS["openai"].new_profile("openai")
LOCAL = PRESETS["ollama"].new_profile("ollama")
OTHER_KEY = "sk-other-9876543210zyxwvuSECRET"
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")


class RelockingKeyring(MemoryKeyring):
    locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise KeyringLocked("Failed to unlock the item!")
        return super().get_password(service, username)


class ReadOnlyKeyring(MemoryKeyring):
    """Answers lookups but refuses to save or delete, like a keychain the user denied."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("access denied")

    def delete_password(self, service: str, username: str) -> None:
        raise OSError("access denied")


class SilentKeyring(MemoryKeyring):
    """A keychain daemon that never answers (until the test lets it go)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait()
        return None


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def memory() -> MemoryKeyring:
    return MemoryKeyring()


def make(tmp_path: Path, backend: KeyringBackend | None, seen: list[str] | None = None,
         environ: dict[str, str] | None = None, **kwargs: object) -> Secrets:
    return Secrets(tmp_path, environ or {}, backend,
                   on_secret=None if seen is None else seen.append, **kwargs)  # type: ignore[arg-type]


def files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# -- a working keychain ----------------------------------------------------------------------


def test_status_of_a_working_keychain(tmp_path: Path, memory: MemoryKeyring) -> None:
    assert make(tmp_path, memory).status() == KeychainStatus(True, MemoryKeyring.name, "")


def test_key_stored_in_the_keychain_is_found_again(
    tmp_path: Path, memory: MemoryKeyring, seen: list[str]
) -> None:
    secrets = make(tmp_path, memory, seen)
    secrets.store(OPENAI.key_ref, f"  {TEST_KEY}\n", KeySource.KEYCHAIN)
    assert memory.entries == {(SERVICE, "openai"): TEST_KEY}  # stripped, under our service
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.KEYCHAIN)
    later = make(tmp_path, memory)  # the next start of the app
    assert later.get(OPENAI) == (TEST_KEY, KeySource.KEYCHAIN)
    assert later.get(LOCAL) == (None, KeySource.NONE)
    assert seen == [TEST_KEY, TEST_KEY]  # on storing, and on handing it out
    assert files(tmp_path) == []  # nothing on disk


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"session", "keychain", "plaintext", "env"}, KeySource.SESSION),
        ({"keychain", "plaintext", "env"}, KeySource.KEYCHAIN),
        ({"plaintext", "env"}, KeySource.PLAINTEXT),
        ({"env"}, KeySource.ENVIRONMENT),
        (set(), KeySource.NONE),
    ],
)
def test_lookup_order(tmp_path: Path, memory: MemoryKeyring, stored: set[str],
                      expected: KeySource) -> None:
    """Session, keychain, plain text (accepted), environment: the first one found wins."""
    keys = {KeySource.SESSION: "session-key-1", KeySource.KEYCHAIN: "keychain-key-2",
            KeySource.PLAINTEXT: "plain-key-3", KeySource.ENVIRONMENT: "env-key-4"}
    environ = {"OPENAI_API_KEY": keys[KeySource.ENVIRONMENT]} if "env" in stored else {}
    secrets = make(tmp_path, memory, environ=environ, plaintext_accepted=True)
    if "plaintext" in stored:
        secrets.store("openai", keys[KeySource.PLAINTEXT], KeySource.PLAINTEXT)
    if "keychain" in stored:
        memory.set_password(SERVICE, "openai", keys[KeySource.KEYCHAIN])
    if "session" in stored:
        secrets.store("openai", keys[KeySource.SESSION], KeySource.SESSION)
    assert secrets.get(OPENAI) == (keys.get(expected), expected)


def test_environment_key_is_the_profiles_variable(tmp_path: Path, seen: list[str]) -> None:
    environ = {"OPENAI_API_KEY": f" {TEST_KEY} ", "GROQ_API_KEY": "   "}
    secrets = make(tmp_path, MemoryKeyring(), seen, environ)
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.ENVIRONMENT)
    assert secrets.get(PRESETS["groq"].new_profile("groq")) == (None, KeySource.NONE)  # blank
    assert secrets.get(LOCAL) == (None, KeySource.NONE)  # no variable for a local server
    assert seen == [TEST_KEY]


def test_storing_in_the_keychain_replaces_session_and_plain_text_copies(
    tmp_path: Path, memory: MemoryKeyring
) -> None:
    secrets = make(tmp_path, memory, plaintext_accepted=True)
    secrets.store("openai", "old-plain-key", KeySource.PLAINTEXT)
    secrets.store("openai", "old-session-key", KeySource.SESSION)
    secrets.store("openai", TEST_KEY, KeySource.KEYCHAIN)
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.KEYCHAIN)
    assert not secrets.plaintext_path.exists()


def test_forget_removes_the_key_everywhere(tmp_path: Path, memory: MemoryKeyring) -> None:
    secrets = make(tmp_path, memory, plaintext_accepted=True,
                   environ={"OPENAI_API_KEY": OTHER_KEY})
    secrets.store("ollama", "plain-local-key", KeySource.PLAINTEXT)
    secrets.store("openai", TEST_KEY, KeySource.PLAINTEXT)
    secrets.store("openai", TEST_KEY, KeySource.SESSION)
    memory.set_password(SERVICE, "openai", TEST_KEY)
    secrets.forget("openai")
    assert memory.entries == {}
    assert json.loads(secrets.plaintext_path.read_text("utf-8")) == {"ollama": "plain-local-key"}
    assert secrets.get(OPENAI) == (OTHER_KEY, KeySource.ENVIRONMENT)  # the environment stays
    secrets.forget("ollama")
    assert files(tmp_path) == []  # the last plain-text key gone: the file too
    secrets.forget("never-stored")  # nothing to remove is fine


def test_keychain_that_refuses_to_save_raises_user_text(tmp_path: Path) -> None:
    secrets = make(tmp_path, ReadOnlyKeyring())
    assert secrets.status().available
    with pytest.raises(SecretsError) as caught:
        secrets.store("openai", TEST_KEY, KeySource.KEYCHAIN)
    assert caught.value.message == (
        "The key could not be saved in the keychain (access denied). Unlock the keychain and "
        "try again, or keep the key for this session only."
    )
    assert TEST_KEY not in caught.value.message
    with pytest.raises(SecretsError, match="could not be removed from the keychain"):
        secrets.forget("openai")


def test_a_key_that_cannot_be_read_falls_back(tmp_path: Path) -> None:
    backend = RelockingKeyring()
    backend.set_password(SERVICE, "openai", OTHER_KEY)
    secrets = make(tmp_path, backend, environ={"OPENAI_API_KEY": TEST_KEY})
    assert secrets.status().available
    backend.locked = True  # the user locked the keychain while the app was running
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.ENVIRONMENT)


def test_empty_key_and_bad_destination(tmp_path: Path, memory: MemoryKeyring) -> None:
    secrets = make(tmp_path, memory)
    with pytest.raises(SecretsError, match="The key is empty"):
        secrets.store("openai", "  \n", KeySource.SESSION)
    with pytest.raises(ValueError, match="cannot be stored in environment"):
        secrets.store("openai", TEST_KEY, KeySource.ENVIRONMENT)
    assert secrets.get(OPENAI) == (None, KeySource.NONE)


# -- no keychain ---------------------------------------------------------------------------


def test_no_keychain_is_said_plainly(tmp_path: Path, seen: list[str]) -> None:
    secrets = make(tmp_path, fail.Keyring(), seen, {"OPENAI_API_KEY": OTHER_KEY})
    status = secrets.status()
    assert (status.available, status.backend) == (False, "fail Keyring")
    assert status.reason.startswith("No keychain is available")
    assert "OPENAI_API_KEY" in status.reason and "this session only" in status.reason
    if sys.platform.startswith("linux"):
        assert "no Secret Service" in status.reason
    with pytest.raises(SecretsError) as caught:
        secrets.store("openai", TEST_KEY, KeySource.KEYCHAIN)
    assert caught.value.message == f"The key was not saved. {status.reason}"
    assert secrets.get(OPENAI) == (OTHER_KEY, KeySource.ENVIRONMENT)
    secrets.store("openai", TEST_KEY, KeySource.SESSION)  # the offered fallback
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.SESSION)
    secrets.forget("openai")
    assert secrets.get(OPENAI) == (OTHER_KEY, KeySource.ENVIRONMENT)
    assert make(tmp_path, fail.Keyring()).get(OPENAI) == (None, KeySource.NONE)  # session gone
    assert files(tmp_path) == []
    # a key is reported even when storing it failed: the failure may be logged
    assert seen == [TEST_KEY, OTHER_KEY, TEST_KEY, TEST_KEY, OTHER_KEY]


def test_null_keychain_is_turned_off(tmp_path: Path) -> None:
    status = make(tmp_path, null.Keyring()).status()
    assert not status.available
    assert status.reason.startswith("The keychain is turned off")
    assert "this session only" in status.reason


def test_locked_keychain(tmp_path: Path) -> None:
    status = make(tmp_path, LockedKeyring()).status()
    assert not status.available
    assert status.reason.startswith("The keychain is locked and was not unlocked")


def test_keychain_that_never_answers_does_not_hang(tmp_path: Path) -> None:
    backend = SilentKeyring()
    try:
        secrets = make(tmp_path, backend, environ={"OPENAI_API_KEY": TEST_KEY},
                       probe_timeout_s=0.2)
        status = secrets.status()
        assert not status.available
        assert status.reason.startswith("The keychain did not answer within 0.2 seconds")
        assert secrets.get(OPENAI) == (TEST_KEY, KeySource.ENVIRONMENT)  # no second wait
    finally:
        backend.release.set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Secret Service is Linux's")
def test_secret_service_without_a_session_bus(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    status = make(tmp_path, SecretService.Keyring()).status()
    assert (status.available, status.backend) == (False, "SecretService Keyring")
    assert "no Secret Service" in status.reason


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private D-Bus session bus with no Secret Service on it."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None or not sys.platform.startswith("linux"):
        pytest.skip("needs dbus-daemon")
    proc = subprocess.Popen([daemon, "--session", "--nofork", "--nopidfile",
                             "--print-address=1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:")
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        proc.terminate()
        proc.wait()


def test_secret_service_missing_on_a_running_bus(tmp_path: Path, session_bus: str) -> None:
    secrets = make(tmp_path, SecretService.Keyring(), environ={"OPENAI_API_KEY": TEST_KEY})
    status = secrets.status()
    assert not status.available
    assert "no Secret Service" in status.reason
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.ENVIRONMENT)


# -- plain text ----------------------------------------------------------------------------


def test_plain_text_needs_consent(tmp_path: Path, memory: MemoryKeyring) -> None:
    secrets = make(tmp_path, memory)
    with pytest.raises(SecretsError, match="after you accept the warning"):
        secrets.store("openai", TEST_KEY, KeySource.PLAINTEXT)
    assert files(tmp_path) == []
    secrets.store("openai", TEST_KEY, KeySource.PLAINTEXT, plaintext_accepted=True)
    assert secrets.plaintext_accepted
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.PLAINTEXT)


@posix_only
def test_plain_text_file_is_private_and_clearly_named(tmp_path: Path) -> None:
    secrets = make(tmp_path, fail.Keyring(), plaintext_accepted=True)
    secrets.store("openai", TEST_KEY, KeySource.PLAINTEXT)
    secrets.store("groq", OTHER_KEY, KeySource.PLAINTEXT)
    path = tmp_path / PLAINTEXT_FILE
    assert secrets.plaintext_path == path and "UNENCRYPTED" in path.name
    assert files(tmp_path) == [PLAINTEXT_FILE]  # no temp file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text("utf-8")) == {"openai": TEST_KEY, "groq": OTHER_KEY}


@posix_only
def test_plain_text_file_made_private_again(tmp_path: Path) -> None:
    path = tmp_path / PLAINTEXT_FILE
    path.write_text(json.dumps({"ollama": "old-local-key"}), "utf-8")
    path.chmod(0o644)
    make(tmp_path, fail.Keyring(), plaintext_accepted=True).store(
        "openai", TEST_KEY, KeySource.PLAINTEXT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text("utf-8")) == {"ollama": "old-local-key", "openai": TEST_KEY}


def test_plain_text_is_read_only_while_accepted(tmp_path: Path) -> None:
    make(tmp_path, fail.Keyring(), plaintext_accepted=True).store(
        "openai", TEST_KEY, KeySource.PLAINTEXT)
    assert make(tmp_path, fail.Keyring()).get(OPENAI) == (None, KeySource.NONE)
    accepted = make(tmp_path, fail.Keyring(), plaintext_accepted=True)
    assert accepted.get(OPENAI) == (TEST_KEY, KeySource.PLAINTEXT)


@pytest.mark.parametrize("content", ["{oops", "[1, 2]", '{"openai": 5}'])
def test_damaged_plain_text_file_is_no_key(tmp_path: Path, content: str) -> None:
    (tmp_path / PLAINTEXT_FILE).write_text(content, "utf-8")
    secrets = make(tmp_path, fail.Keyring(), plaintext_accepted=True)
    assert secrets.get(OPENAI) == (None, KeySource.NONE)
    secrets.store("groq", OTHER_KEY, KeySource.PLAINTEXT)  # and it can be written afresh
    assert json.loads((tmp_path / PLAINTEXT_FILE).read_text("utf-8")) == {"groq": OTHER_KEY}


# -- the real default keychain -----------------------------------------------------------------


def test_default_keychain_round_trip(tmp_path: Path) -> None:
    secrets = make(tmp_path, None)
    if not secrets.status().available:
        pytest.skip(f"no usable default keychain here: {secrets.status().backend}")
    profile = dataclasses.replace(OPENAI, id=f"desktop-chat-test-{uuid.uuid4().hex}")
    try:
        secrets.store(profile.key_ref, TEST_KEY, KeySource.KEYCHAIN)
        assert make(tmp_path, None).get(profile) == (TEST_KEY, KeySource.KEYCHAIN)
    finally:
        secrets.forget(profile.key_ref)
    assert make(tmp_path, None).get(profile) == (None, KeySource.NONE)


def test_default_keychain_missing_is_said_plainly(tmp_path: Path) -> None:
    """Here (a container without a Secret Service) keyring falls back to its fail backend:
    that must read as "no keychain", not raise."""
    secrets = make(tmp_path, None, environ={"OPENAI_API_KEY": TEST_KEY})
    status = secrets.status()
    if status.available:
        pytest.skip(f"a default keychain works here: {status.backend}")
    assert status.backend == type(keyring.get_keyring()).name
    assert status.reason.startswith("No keychain is available")
    assert secrets.get(OPENAI) == (TEST_KEY, KeySource.ENVIRONMENT)
    with pytest.raises(SecretsError, match=r"^The key was not saved\. No keychain"):
        secrets.store("openai", TEST_KEY, KeySource.KEYCHAIN)


def test_profile_key_ref_names_the_entry(tmp_path: Path, memory: MemoryKeyring) -> None:
    profile = Profile(id="my-server", name="My server", needs_key=True)
    make(tmp_path, memory).store(profile.key_ref, TEST_KEY, KeySource.KEYCHAIN)
    assert memory.entries == {("desktop-chat", "my-server"): TEST_KEY}
    assert make(tmp_path, memory).get(profile) == (TEST_KEY, KeySource.KEYCHAIN)


def test_the_command_lines_profile_takes_the_environments_key_without_opening_the_keychain(
        tmp_path: Path) -> None:
    """`--base-url` with OPENAI_API_KEY set: that key is this run's; the keychain (whose
    probe loads secretstorage & co. during start-up) is not consulted. A saved profile still
    prefers its stored key."""
    from desktop_chat.core.config.settings import RUN_PROFILE_ID, profile_for_url

    backend = SilentKeyring()  # would hang a lookup: it must not be asked
    try:
        secrets = make(tmp_path, backend, environ={"OPENAI_API_KEY": TEST_KEY})
        run = profile_for_url("http://127.0.0.1:8080/v1", "m", RUN_PROFILE_ID)
        assert secrets.get(run) == (TEST_KEY, KeySource.ENVIRONMENT)
        assert secrets._status is None  # never probed
    finally:
        backend.release.set()
    memory = MemoryKeyring()
    memory.set_password(SERVICE, OPENAI.key_ref, OTHER_KEY)
    secrets = make(tmp_path, memory, environ={"OPENAI_API_KEY": TEST_KEY})
    assert secrets.get(OPENAI) == (OTHER_KEY, KeySource.KEYCHAIN)
