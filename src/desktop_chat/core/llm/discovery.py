"""Finding local servers (Ollama, LM Studio, llama.cpp, vLLM) already running on this computer.

Every preset's port is asked for `/v1/models` at the same time with a short timeout, so the
whole probe takes about one timeout however many ports are closed. It never raises: a closed
port, a timeout or a server that answers something else simply finds nothing. The caller runs
it in the background; start-up never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from desktop_chat.core.config.providers import (
    LOCAL_PRESETS,
    Endpoint,
    Preset,
    api_root_candidates,
    is_local_host,
)
from desktop_chat.core.llm import sdk
from desktop_chat.core.llm.client import ChatClient, RetryPolicy
from desktop_chat.core.llm.errors import ChatError

log = logging.getLogger("desktop_chat.discovery")


@dataclass(frozen=True, slots=True)
class Found:
    preset: Preset
    base_url: str
    models: list[str]


PortOf = Callable[[Preset], int | None]


async def probe_local(
    presets: Iterable[Preset] = LOCAL_PRESETS,
    host: str = "127.0.0.1",
    timeout_s: float = 0.6,
    port_of: PortOf | None = None,
) -> list[Found]:
    """The presets whose server answered, in the order given. `port_of` maps a preset to the
    port to try (tests point it at a loopback server); by default the preset's own port."""
    targets: list[tuple[Preset, str]] = []
    for item in presets:
        port = port_of(item) if port_of is not None else item.local_port
        if port is not None:
            targets.append((item, f"http://{_host_part(host)}:{port}/v1"))
    answers = await asyncio.gather(*(_models_at(url, timeout_s) for _, url in targets))
    return [
        Found(item, url, models)
        for (item, url), models in zip(targets, answers, strict=True)
        if models is not None
    ]


async def _models_at(base_url: str, timeout_s: float) -> list[str] | None:
    """The model list at `base_url`, or None when nothing usable answers there."""
    # Direct connection: a local server is never reached through a proxy.
    endpoint = Endpoint(base_url, None, timeout_s, timeout_s, needs_key=False, proxy_url="")
    client = ChatClient(endpoint, RetryPolicy(attempts=0))
    try:
        models = await client.list_models(timeout_s, quiet=True)
        return await chat_models(base_url, models, timeout_s)
    except ChatError as exc:
        log.debug("nothing usable at %s: %s", base_url, exc.detail or exc.message)
        return None
    except Exception as exc:  # a probe must never take the app down
        log.debug("probe of %s failed: %r", base_url, exc)
        return None
    finally:
        try:
            await client.aclose()
        except Exception:  # closing a connection that never opened can still complain
            log.debug("closing the probe client for %s failed", base_url, exc_info=True)


async def chat_models(base_url: str, models: list[str], timeout_s: float = 2.0) -> list[str]:
    """`models` without the ones the server says are not for chat (embedding models), in the
    same order. Local servers say so in their own API: LM Studio's /api/v0/models gives each
    model's `type`, Ollama's /api/show its `capabilities`. Anything else (or a server that
    does not answer there) leaves the list as it is."""
    endpoint = Endpoint(base_url, None, timeout_s, timeout_s, needs_key=False, proxy_url="")
    if len(models) < 2 or not is_local_host(endpoint.host):
        return models
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        openai = await sdk.load()  # in a helper thread, once (core/llm/sdk.py)
        # built off the loop: an HTTP client loads the TLS certificates (70-130 ms)
        http_client = await asyncio.to_thread(
            lambda: openai.DefaultAsyncHttpxClient(trust_env=False, timeout=timeout_s))
        async with http_client as http:
            chat = await _lm_studio_chat(http, root) or await _ollama_chat(http, root, models)
    except Exception as exc:  # a server that does not speak these is the usual case
        log.debug("no model kinds from %s: %r", root, exc)
        return models
    if not chat:
        return models
    kept = [m for m in models if m in chat]
    return kept or models


async def _lm_studio_chat(http: Any, root: str) -> set[str] | None:
    answer = await http.get(f"{root}/api/v0/models")
    if answer.status_code != 200:
        return None
    data = answer.json().get("data")
    if not isinstance(data, list):
        return None
    return {m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)
            and m.get("type") not in ("embeddings", "embedding")}


async def _ollama_chat(http: Any, root: str, models: list[str]) -> set[str] | None:
    async def can_chat(name: str) -> bool:
        answer = await http.post(f"{root}/api/show", json={"model": name})
        if answer.status_code != 200:
            raise LookupError(name)
        capabilities = answer.json().get("capabilities")
        return not isinstance(capabilities, list) or "completion" in capabilities

    try:
        flags = await asyncio.gather(*(can_chat(name) for name in models))
    except LookupError:
        return None
    return {name for name, ok in zip(models, flags, strict=True) if ok}


async def find_api_root(url: str, list_models: Callable[[str], Awaitable[list[str]]]
                        ) -> tuple[str, list[str]]:
    """The base URL where the API answers for what the user typed, and its models: a
    scheme-less local address gets http://, a bare host is tried with /v1 first. Raises the
    `ChatError` of the URL as typed when no candidate answers."""
    candidates = api_root_candidates(url)
    for candidate in candidates[:-1]:
        try:
            return candidate, await list_models(candidate)
        except ChatError as exc:
            log.info("no API at %s (%s); trying %s", candidate, exc.message, candidates[-1])
    return candidates[-1], await list_models(candidates[-1])


def _host_part(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
