"""What a chat turn uses of the tools: the `tools` to offer the model, and running one call
the model asked for — resolve it, check its arguments, ask for consent when the user's
settings say so, call the server, and record everything on the call's `ToolCall` part.

The question to the user is a coroutine the window supplies (`ask`); the turn waits on it
inside its own task, so Stop cancels the wait like anything else in the turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from desktop_chat.core.logs import redact_secrets
from desktop_chat.core.model.message import ToolCall, ToolCallState
from desktop_chat.core.tools.consent import Decision, ToolSettings
from desktop_chat.core.tools.host import ToolError, ToolHost, ToolInfo

log = logging.getLogger("desktop_chat.tools")

Ask = Callable[[ToolCall, ToolInfo], Awaitable[Decision]]


class ToolBox:
    """`settings()` gives the current tool settings; `remember(settings)` keeps a changed
    one (an "Always allow" answer)."""

    def __init__(self, host: ToolHost, settings: Callable[[], ToolSettings],
                 remember: Callable[[ToolSettings], None], ask: Ask | None = None) -> None:
        self.host = host
        self._settings = settings
        self._remember = remember
        self.ask = ask

    @property
    def step_limit(self) -> int:
        return self._settings().step_limit

    def specs(self) -> list[dict[str, Any]]:
        """The Chat Completions `tools` of every ready server (empty: send none)."""
        return [tool.spec() for tool in self.host.tools()]

    def label(self, call: ToolCall) -> None:
        """Fill in the server and tool a function name stands for (as far as known)."""
        tool = self.host.find(call.name)
        if tool is not None:
            call.server, call.tool = tool.server, tool.name

    async def decide(self, call: ToolCall) -> ToolInfo | None:
        """Whether `call` may run: the tool it names (None when it must not run; the call is
        then closed with the reason). May wait for the user's answer."""
        tool = self.host.find(call.name)
        if tool is None:
            names = ", ".join(t.function for t in self.host.tools()) or "none"
            call.close(ToolCallState.FAILED, f"There is no tool named '{call.name}'. The "
                       f"tools available are: {names}.")
            return None
        call.server, call.tool = tool.server, tool.name
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            call.close(ToolCallState.FAILED, f"The arguments are not valid JSON ({exc}); the "
                       "tool was not run. Send them again as one JSON object.")
            return None
        if not isinstance(arguments, dict):
            call.close(ToolCallState.FAILED, "The arguments must be one JSON object; the tool "
                       "was not run.")
            return None
        settings = self._settings()
        if not settings.needs_consent(self.host.config(tool.server), tool.name, tool.read_only):
            return tool
        if self.ask is None:
            call.close(ToolCallState.DENIED)
            return None
        decision = await self.ask(call, tool)
        if decision is Decision.DENY:
            call.close(ToolCallState.DENIED)
            return None
        if decision is Decision.ALLOW_ALWAYS:
            self._remember(self._settings().allow_always(tool.server, tool.name))
        return tool

    async def run(self, call: ToolCall, tool: ToolInfo) -> None:
        """Call the tool; the outcome goes on `call`. Cancelling cancels the call on the
        server and marks it cancelled."""
        call.state = ToolCallState.RUNNING
        started = time.perf_counter()
        try:
            outcome = await self.host.call(tool, json.loads(call.arguments or "{}"))
        except asyncio.CancelledError:
            call.close(ToolCallState.CANCELLED)
            raise
        except ToolError as exc:
            call.close(ToolCallState.FAILED, str(exc))
        else:
            call.close(ToolCallState.FAILED if outcome.is_error else ToolCallState.DONE,
                       redact_secrets(outcome.text) or "(no output)")
        finally:
            call.duration_s = time.perf_counter() - started
        log.info("tool %s › %s: %s in %.3f s", call.server, call.tool, call.state.value,
                 call.duration_s)
