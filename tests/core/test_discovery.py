"""Auto-detection of local servers: a loopback server on a mapped port is found, closed ports
and servers that give no model list are not, and the probe never raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from desktop_chat.core.config.providers import LOCAL_PRESETS, PRESETS, Preset
from desktop_chat.core.llm.discovery import Found, probe_local
from tests.support.client_run import free_port
from tests.support.openai_server import LoopbackServer, Scenario
from tests.support.proxy_trap import NO_PROXY_VARIABLES, ProxyTrap

OLLAMA = PRESETS["ollama"]


def ports(mapping: dict[str, int]) -> dict[str, int]:
    """Every local preset on a closed port, except those mapped."""
    return {p.key: mapping.get(p.key) or free_port() for p in LOCAL_PRESETS}


def probe(port_map: dict[str, int], presets: tuple[Preset, ...] = LOCAL_PRESETS,
          timeout_s: float = 0.6) -> list[Found]:
    return asyncio.run(probe_local(presets, timeout_s=timeout_s,
                                   port_of=lambda p: port_map.get(p.key)))


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyTrap]:
    proxy = ProxyTrap()
    for name, value in proxy.environment().items():
        monkeypatch.setenv(name, value)
    for name in NO_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield proxy
    proxy.close()


def test_finds_the_server_on_its_port_and_ignores_closed_ones(
    server: LoopbackServer, trap: ProxyTrap
) -> None:
    server.models = ["llama3.2", "gemma3"]
    found = probe(ports({"ollama": server.port}))
    assert found == [Found(OLLAMA, f"http://127.0.0.1:{server.port}/v1", ["llama3.2", "gemma3"])]
    # the OpenAI model list, then the local server's own API (which models are for chat)
    [asked] = [r for r in server.requests if "/api/" not in r.path]
    assert (asked.method, asked.path) == ("GET", "/v1/models")
    assert asked.headers["authorization"] == "Bearer no-key-set"
    assert trap.accepted == []  # a local server is never reached through the system proxy


def test_several_servers_in_preset_order(server: LoopbackServer) -> None:
    with LoopbackServer() as second:
        found = probe(ports({"vllm": server.port, "lmstudio": second.port}))
        second_url = second.base_url
    assert [f.preset.key for f in found] == ["lmstudio", "vllm"]
    assert [f.base_url for f in found] == [second_url, server.base_url]


def test_nothing_running() -> None:
    assert probe(ports({})) == []


@pytest.mark.parametrize(
    "answer",
    [Scenario(status=404), Scenario(status=500), Scenario(status=401),
     Scenario(stall_before_headers=True)],
    ids=["404", "500", "401", "silent"],
)
def test_a_server_without_a_usable_model_list_is_not_offered(
    server: LoopbackServer, answer: Scenario
) -> None:
    server.models_scenario = answer
    assert probe(ports({"llamacpp": server.port}), timeout_s=0.3) == []
    assert len(server.requests) == 1


def test_default_ports_come_from_the_presets() -> None:
    """Without port_of, a preset's own port is probed: a loopback server on the first free
    one of them is found (skipped if every such port is taken on this machine)."""
    for local in LOCAL_PRESETS:
        try:
            server = LoopbackServer(port=local.local_port or 0).start()
        except OSError:
            continue
        with server:
            found = asyncio.run(probe_local(presets=(local,), timeout_s=2.0))
        assert found == [Found(local, local.base_url, ["test-model", "other-model"])]
        return
    pytest.skip("every local preset's port is in use here")


def test_never_raises_on_a_bad_host() -> None:
    assert asyncio.run(probe_local(host="256.0.0.1", timeout_s=0.3,
                                   port_of=lambda p: 80)) == []
