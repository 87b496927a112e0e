"""`logs.setup`: one rotating file in the data dir, and no secret ever reaches it."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.fail
import pytest

from desktop_chat.core import logs
from desktop_chat.core.config.providers import PRESETS
from desktop_chat.core.config.secrets import KeySource, Secrets
from tests.conftest import TEST_KEY

log = logging.getLogger("desktop_chat.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave the root logger (and the quietened library loggers) as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level
             for name in ("httpx", "httpx2", "httpcore", "openai")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_desktop_chat", False)]


def read_log(path: Path) -> str:
    for handler in ours():
        handler.flush()
    return path.read_text("utf-8")


def test_setup_writes_to_a_rotating_file_in_the_dir(tmp_path: Path) -> None:
    path = logs.setup(tmp_path / "logs", secrets=[])
    assert path == tmp_path / "logs" / logs.LOG_FILE
    log.info("hello %s", "file")
    log.debug("not at INFO level")
    text = read_log(path)
    assert "INFO    desktop_chat.test: hello file" in text
    assert "not at INFO level" not in text
    files = [h for h in ours() if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(files) == 1
    assert files[0].maxBytes > 0 and files[0].backupCount > 0
    assert Path(files[0].baseFilename) == path


def test_setup_quietens_the_http_libraries(tmp_path: Path) -> None:
    path = logs.setup(tmp_path, secrets=[])
    logging.getLogger("httpx").info("HTTP Request: POST ...")
    logging.getLogger("openai").warning("openai warns")
    text = read_log(path)
    assert "HTTP Request" not in text
    assert "openai warns" in text


def test_given_secret_never_reaches_the_file(tmp_path: Path) -> None:
    path = logs.setup(tmp_path, secrets=[TEST_KEY])
    log.info("key in the message: " + TEST_KEY)
    log.warning("key in the args: %s and %r", TEST_KEY, {"api_key": TEST_KEY})
    log.info("headers %s", {"Authorization": f"Bearer {TEST_KEY}"})
    try:
        try:
            raise KeyError(f"inner {TEST_KEY}")
        except KeyError as inner:
            raise RuntimeError(f"request failed with key {TEST_KEY}") from inner
    except RuntimeError:
        log.exception("while talking to the server (%s)", TEST_KEY)
    try:
        raise ValueError(TEST_KEY)
    except ValueError as exc:
        log.error("failed", exc_info=exc)
    text = read_log(path)
    assert TEST_KEY not in text
    assert "SECRET" not in text and "0123456789abcdef" not in text  # not even a fragment
    assert text.count("[REDACTED]") >= 8
    # the rest of the record survives
    assert "while talking to the server ([REDACTED])" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: request failed with key [REDACTED]" in text
    assert "KeyError: 'inner [REDACTED]'" in text


def test_given_secret_of_any_shape_is_redacted(tmp_path: Path) -> None:
    local_key = "local-server-password-42"
    path = logs.setup(tmp_path, secrets=[local_key])
    log.info("using %s", local_key)
    text = read_log(path)
    assert local_key not in text
    assert "using [REDACTED]" in text


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("key sk-proj-AbCdEf0123456789_xyz-XYZ in a message", "AbCdEf0123456789"),
        ("Authorization: Bearer abc.DEF-123_456~ghi+jkl/mn=", "abc.DEF-123_456"),
        ("authorization: bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ('{"api_key": "plainsecretvalue"}', "plainsecretvalue"),
        ("api-key=another-secret-value", "another-secret-value"),
    ],
    ids=["sk", "bearer", "bearer-lowercase", "api_key-json", "api-key-param"],
)
def test_secret_shaped_strings_are_redacted_without_being_given(
    tmp_path: Path, message: str, secret: str
) -> None:
    path = logs.setup(tmp_path, secrets=[])
    log.warning("%s", message)
    try:
        raise ConnectionError(message)
    except ConnectionError:
        log.exception("cut")
    text = read_log(path)
    assert secret not in text
    assert text.count("[REDACTED]") == 2


def test_redact_keeps_the_words_around_a_bearer_token() -> None:
    assert logs.redact("Bearer abcdefgh123", []) == "Bearer [REDACTED]"
    assert logs.redact("nothing secret here: sk-short", []) == "nothing secret here: sk-short"


def test_setup_twice_does_not_duplicate_handlers(tmp_path: Path) -> None:
    before = [h for h in logging.getLogger().handlers if h not in ours()]
    logs.setup(tmp_path, secrets=[TEST_KEY])
    first = ours()
    path = logs.setup(tmp_path, secrets=[TEST_KEY])
    second = ours()
    assert len(second) == len(first)
    assert not set(first) & set(second)  # replaced, not added
    assert [h for h in logging.getLogger().handlers if h not in second] == before
    log.info("exactly once")
    assert read_log(path).count("exactly once") == 1


def test_setup_again_with_a_new_secret_redacts_it(tmp_path: Path) -> None:
    logs.setup(tmp_path, secrets=["first-secret-value"])
    path = logs.setup(tmp_path, secrets=["second-secret-value"])
    log.info("%s", "second-secret-value")
    assert "second-secret-value" not in read_log(path)


def test_key_added_at_run_time_is_redacted_from_then_on(tmp_path: Path) -> None:
    typed = "typed-in-at-run-time-7391"
    path = logs.setup(tmp_path, secrets=[])
    log.info("before: %s", typed)
    logs.add_secret(f"  {typed}\n")  # as pasted into a dialog
    log.info("after: %s", typed)
    try:
        raise ConnectionError(f"refused with {typed}")
    except ConnectionError:
        log.exception("send failed")
    text = read_log(path)
    assert f"before: {typed}" in text  # nothing is rewritten after the fact
    assert "after: [REDACTED]" in text
    assert "ConnectionError: refused with [REDACTED]" in text
    assert text.count(typed) == 1
    again = logs.setup(tmp_path / "again", secrets=[])  # new handlers keep knowing it
    log.warning("still %s", typed)
    assert "still [REDACTED]" in read_log(again)


def test_longer_secret_containing_a_shorter_one_is_redacted_whole(tmp_path: Path) -> None:
    path = logs.setup(tmp_path, secrets=[])
    logs.add_secret("shared-prefix-4242")
    logs.add_secret("shared-prefix-4242-and-more")
    log.info("<%s> <%s>", "shared-prefix-4242-and-more", "shared-prefix-4242")
    assert "<[REDACTED]> <[REDACTED]>" in read_log(path)


def test_too_short_to_be_a_secret_is_ignored(tmp_path: Path) -> None:
    path = logs.setup(tmp_path, secrets=[])
    for short in ("", "   ", "abc"):
        logs.add_secret(short)
    log.info("abc stays readable")
    assert "abc stays readable" in read_log(path)


def test_keys_seen_by_secrets_are_redacted(tmp_path: Path) -> None:
    """The wiring the app uses: `Secrets(on_secret=logs.add_secret)`."""
    typed, from_env = "pasted-into-the-dialog-5150", "exported-in-the-shell-8086"
    path = logs.setup(tmp_path / "logs", secrets=[])
    secrets = Secrets(tmp_path, {"GROQ_API_KEY": from_env}, keyring.backends.fail.Keyring(),
                      on_secret=logs.add_secret)
    secrets.store("openai", typed, "session")  # type: ignore[arg-type]
    assert secrets.get(PRESETS["groq"].new_profile("groq")) == (from_env, KeySource.ENVIRONMENT)
    log.error("request with %s and %s failed", typed, from_env)
    text = read_log(path)
    assert typed not in text and from_env not in text
    assert "request with [REDACTED] and [REDACTED] failed" in text
