"""Proxies and addresses: a manual proxy is used for everything, the system one (environment
variables) is honoured by default but never for a server on this computer, and a malformed
proxy or base URL is reported before any request (building the client never raises). The
loopback server doubles as the HTTP proxy: it records the absolute URL a proxied request names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desktop_chat.core.config.providers import Endpoint
from desktop_chat.core.llm.errors import ChatError, ErrorKind
from desktop_chat.core.llm.events import Finished
from tests.conftest import TEST_KEY
from tests.support.client_run import failure, list_models, stream_all, texts
from tests.support.openai_server import LoopbackServer
from tests.support.proxy_trap import NO_PROXY_VARIABLES, PROXY_VARIABLES, ProxyTrap

REMOTE = "http://chat.example.test/v1"  # never resolved: only the proxy sees it


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, *NO_PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyTrap]:
    """The system proxy points at a trap that counts connections."""
    proxy = ProxyTrap()
    for name, value in proxy.environment().items():
        monkeypatch.setenv(name, value)
    yield proxy
    proxy.close()


def proxy_of(server: LoopbackServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_manual_proxy_carries_the_request(server: LoopbackServer) -> None:
    events = stream_all(Endpoint(REMOTE, TEST_KEY, 2, 2, proxy_url=proxy_of(server)))
    assert texts(events) == ["Hello", " world"] and events[-1] == Finished("stop")
    [sent] = server.requests
    assert sent.target == f"{REMOTE}/chat/completions"
    assert sent.headers["host"] == "chat.example.test"


def test_manual_proxy_wins_over_the_system_proxy(server: LoopbackServer, trap: ProxyTrap) -> None:
    assert list_models(Endpoint(REMOTE, TEST_KEY, 2, 2, proxy_url=proxy_of(server))) == [
        "test-model", "other-model"]
    assert server.requests[0].target == f"{REMOTE}/models"
    assert trap.accepted == []


def test_system_proxy_is_honoured(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy_of(server))
    monkeypatch.setenv("http_proxy", proxy_of(server))
    events = stream_all(Endpoint(REMOTE, TEST_KEY, 2, 2))
    assert events[-1] == Finished("stop")
    assert server.requests[0].target == f"{REMOTE}/chat/completions"


def test_a_local_server_is_reached_directly(server: LoopbackServer, trap: ProxyTrap) -> None:
    events = stream_all(Endpoint(server.base_url, TEST_KEY, 2, 2))
    assert events[-1] == Finished("stop")
    assert server.requests[0].target == "/v1/chat/completions"  # not an absolute (proxy) URL
    assert trap.accepted == []


@pytest.mark.parametrize("address", ["proxy.example.com:3128", "socks9://proxy:1080", "http://"])
def test_malformed_manual_proxy(server: LoopbackServer, address: str) -> None:
    endpoint = Endpoint(server.base_url, TEST_KEY, 2, 2, proxy_url=address)
    error = failure(stream_all(endpoint))
    assert error.kind is ErrorKind.BAD_PROXY
    assert error.message == (
        f"The proxy address '{address}' is not valid: it must look like http://host:port. Fix "
        "it in Settings, or set the proxy back to the system setting.")
    with pytest.raises(ChatError) as info:
        list_models(endpoint)
    assert info.value.kind is ErrorKind.BAD_PROXY
    assert server.requests == []


def test_a_proxy_password_is_not_shown(server: LoopbackServer) -> None:
    endpoint = Endpoint(server.base_url, TEST_KEY, 2, 2, proxy_url="user:hunter2@proxy:3128")
    error = failure(stream_all(endpoint))
    assert error.kind is ErrorKind.BAD_PROXY
    assert "hunter2" not in error.message and "hunter2" not in error.detail
    assert error.message.startswith("The proxy address '…@proxy:3128' is not valid")


@pytest.mark.parametrize(
    ("base_url", "cause"),
    [
        ("", "it is empty"),
        ("localhost:11434", "it must start with http:// or https:// and name a host"),
        ("http://[broken", "Invalid IPv6 URL"),
        ("http://256.0.0.1/v1", "Invalid IPv4 address: '256.0.0.1'"),
    ],
    ids=["empty", "no-scheme", "broken", "bad-ip"],
)
def test_malformed_base_url(base_url: str, cause: str) -> None:
    endpoint = Endpoint(base_url, TEST_KEY, 2, 2)
    error = failure(stream_all(endpoint))
    assert error.kind is ErrorKind.BAD_URL
    shown = f"The base URL '{base_url}'" if base_url else "The base URL"
    assert error.message == (
        f"{shown} is not valid: {cause}. Fix it in Settings; it looks like "
        "http://127.0.0.1:11434/v1 or https://api.openai.com/v1.")
    with pytest.raises(ChatError) as info:
        list_models(endpoint)
    assert info.value.kind is ErrorKind.BAD_URL
