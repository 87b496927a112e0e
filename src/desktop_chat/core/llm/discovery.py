"""Finding local servers (Ollama, LM Studio, llama.cpp, vLLM) already running on this computer.

Every preset's port is asked for `/v1/models` at the same time with a short timeout, so the
whole probe takes about one timeout however many ports are closed. It never raises: a closed
port, a timeout or a server that answers something else simply finds nothing. The caller runs
it in the background; start-up never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from desktop_chat.core.config.providers import LOCAL_PRESETS, Endpoint, Preset
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
        return await client.list_models(timeout_s, quiet=True)
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


def _host_part(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
