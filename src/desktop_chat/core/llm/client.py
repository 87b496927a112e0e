"""The only module that talks to the `openai` SDK (`Endpoint` lives in core/config/providers.py).

`ChatClient.stream(request)` turns one request (Chat Completions, or the Responses API via
core/llm/responses.py) into an async iterator of typed events, maps every SDK/HTTP failure onto a
`ChatError` with user-facing text, retries rate limits visibly, and closes the HTTP response
when the consumer stops early. `list_models()` reads the server's /models for the picker and
for "Test connection".

The SDK is imported in a helper thread (core/llm/sdk.py) and the HTTP client built on first
use: constructing a `ChatClient` costs nothing, and the first request (or `prepare()`) waits
for both. A key that is slow to look up (the keychain) can be handed over as `key_lookup`,
run off the event loop on first use as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from desktop_chat.core.config.providers import ApiFlavour, Endpoint, GenerationParams
from desktop_chat.core.llm import errors, responses, sdk
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.core.llm.events import (
    Failed,
    Finished,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolCallsRequested,
)
from desktop_chat.core.model.message import Usage

if TYPE_CHECKING:
    import openai

log = logging.getLogger("desktop_chat.client")

RETRYABLE_STATUS = frozenset({429, 503})
# Servers that need no key (Ollama, llama.cpp, vLLM ...) still get a syntactically valid one.
PLACEHOLDER_KEY = "no-key-set"
# What a server says when it cannot take image parts: "image input is not supported",
# "this model does not support vision", "multimodal input ...", "Invalid image_url ...".
_IMAGE_REFUSAL = re.compile(r"image|vision|multi-?modal", re.IGNORECASE)
# ... and one that cannot take tools: "tools is not supported", "does not support tools",
# "tool_choice", "function calling is not enabled".
_TOOLS_REFUSAL = re.compile(r"\btools?\b|tool_choice|function.?call", re.IGNORECASE)
# What a server names in a 400 about a parameter -> the setting's name in our Settings
_PARAM_NAMES = {
    "reasoning_effort": ("reasoning_effort", "reasoning effort"),
    "temperature": ("temperature", "temperature"),
    "top_p": ("top_p", "top_p"),
    "max_tokens": ("max_tokens|max_completion_tokens|max_output_tokens", "max tokens"),
}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]  # Chat Completions shaped; user content may be parts
    params: GenerationParams = field(default_factory=GenerationParams)
    tools: list[dict[str, Any]] = field(default_factory=list)  # Chat Completions `tools`

    @property
    def has_images(self) -> bool:
        return any(
            isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image")
            for message in self.messages
            if isinstance(message.get("content"), list)
            for part in message["content"]
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # retries after the first try
    max_wait_s: float = 30.0  # a longer Retry-After is reported instead of waited for


Sleep = Callable[[float], Awaitable[None]]
KeyLookup = Callable[[], str | None]


class ChatClient:
    def __init__(
        self, endpoint: Endpoint, retry: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep,
        *, key_lookup: KeyLookup | None = None,
    ) -> None:
        """`key_lookup`: the endpoint's key is not known yet; this finds it (blocking is
        fine: it runs in a worker thread before the first request)."""
        self.endpoint = endpoint
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._include_usage = True  # switched off for servers that reject stream_options
        self._key_lookup = key_lookup
        self._preparing = asyncio.Lock()
        # A malformed base URL or proxy (typed into Settings) is reported by stream() and
        # list_models() like any other failure: constructing the client never raises.
        self._sdk: openai.AsyncOpenAI | None = None
        self._setup_error = _endpoint_error(endpoint)

    @property
    def key_pending(self) -> bool:
        """The key is still to be looked up (by `prepare`)."""
        return self._key_lookup is not None

    async def prepare(self) -> None:
        """Look up a pending key and load the SDK, once; every request awaits this first."""
        if self._sdk is not None or self._setup_error is not None:
            return
        async with self._preparing:
            if self._key_lookup is not None:
                key = await asyncio.to_thread(self._key_lookup)
                self.endpoint = dataclasses.replace(self.endpoint, api_key=key)
                self._key_lookup = None
            if self._sdk is not None or self._setup_error is not None:
                return
            try:
                await sdk.load()
            except Exception as exc:
                self._setup_error = errors.unexpected(f"the openai SDK could not be loaded: "
                                                      f"{exc!r}")
                return
            # Off the event loop too: an HTTP client loads the TLS certificates (70-130 ms).
            # (Through a closure: the loop's debug log names a worker's arguments, and the
            # endpoint holds the key.)
            endpoint = self.endpoint
            self._sdk, self._setup_error = await asyncio.to_thread(lambda: _build_sdk(endpoint))

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        await self.prepare()
        if (refusal := self._refusal()) is not None:
            yield Failed(refusal)
            return
        import openai  # loaded by prepare(): this only looks it up

        attempt = 0
        while True:
            try:
                sdk_stream = await self._open(request)
                break
            except openai.APIStatusError as exc:
                if self._is_stream_options_rejection(exc):
                    continue
                error = self._status_error(exc, request)
                delay = self._retry_delay(exc, error, attempt)
                if delay is None:
                    yield Failed(error)
                    return
                attempt += 1
                log.info("retrying after HTTP %s in %.1f s (attempt %d)", exc.status_code,
                         delay, attempt)
                busy = "Rate limited by the server" if exc.status_code == 429 else (
                    f"{errors.status_words(exc.status_code)[0]} (HTTP {exc.status_code})")
                yield Retrying(delay, attempt, busy)
                await self._sleep(delay)
            except Exception as exc:  # every failure becomes a message, never a traceback
                yield Failed(self._request_error(exc))
                return
        if self.endpoint.api == ApiFlavour.RESPONSES:
            events = responses.events(sdk_stream, self._stream_error)
        else:
            events = self._events(sdk_stream)
        # aclosing: when our consumer stops early, the response closes now, not at GC time
        async with contextlib.aclosing(events) as opened:
            async for event in opened:
                yield event

    async def list_models(self, timeout_s: float | None = None, *, quiet: bool = False
                          ) -> list[str]:
        """The server's model ids in the order it lists them (its first is its own default
        for many local servers); raises `ChatError` with text for the window.
        `quiet`: a probe (local server discovery), where no answer is the usual outcome."""
        await self.prepare()
        if (refusal := self._refusal()) is not None:
            raise refusal
        import openai  # loaded by prepare(): this only looks it up

        read_s = timeout_s or self.endpoint.read_timeout_s
        timeout = openai.Timeout(read_s, connect=min(read_s, self.endpoint.connect_timeout_s))
        try:
            ids = [m.id async for m in self._ready().models.list(timeout=timeout)
                   if isinstance(getattr(m, "id", None), str) and m.id]
        except openai.APIStatusError as exc:
            raise self._models_status_error(exc) from None
        except Exception as exc:
            raise self._request_error(exc, read_s, quiet=quiet) from None
        return list(dict.fromkeys(ids))

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """The server's embedding vectors of `texts` (POST /embeddings), in order. Raises
        `ChatError` with text for the window: no such endpoint or model (404), refused (4xx),
        unreachable. The answer is parsed in a worker thread: a batch's JSON is megabytes of
        numbers, too long a held GIL for the window's loop."""
        await self.prepare()
        if (refusal := self._refusal()) is not None:
            raise refusal
        import openai  # loaded by prepare(): this only looks it up

        try:
            raw = await self._ready().embeddings.with_raw_response.create(
                model=model, input=list(texts), encoding_format="float")
            content = raw.content
        except openai.APIStatusError as exc:
            words = errors.status_words_of(exc)
            log.warning("no embeddings from %s (model %s): HTTP %s %s",
                        self.endpoint.base_url, model, exc.status_code, words.details)
            raise errors.no_embeddings(model, exc.status_code, words.text) from None
        except Exception as exc:
            raise self._request_error(exc) from None
        try:
            return await asyncio.to_thread(_vectors, content, len(texts))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("malformed embeddings from %s: %r", self.endpoint.base_url, exc)
            raise errors.malformed(repr(exc)) from None

    def _ready(self) -> openai.AsyncOpenAI:
        assert self._sdk is not None, "_refusal() is checked first"
        return self._sdk

    def _refusal(self) -> ChatError | None:
        """Why no request may go out at all: a malformed base URL or proxy, or a missing key
        the server needs."""
        if self._setup_error is not None:
            return self._setup_error
        if self.endpoint.api_key is None and self.endpoint.needs_key:
            return errors.no_key(self.endpoint.base_url)
        return None

    async def _open(self, request: ChatRequest) -> Any:
        # The SDK walks request bodies through its type transformer on the event loop: 240 ms
        # for 1,000 messages, a frozen window on every send in a long chat. Ours are plain JSON
        # already, so they go into the body as they are (the request is byte-for-byte the same).
        if self.endpoint.api == ApiFlavour.RESPONSES:
            body = responses.request_body(request.messages, request.params, request.tools)
            # Azure names the deployment in the body here, not in the URL
            model = (self.endpoint.is_azure and self.endpoint.azure_deployment) or request.model
            return await self._ready().responses.create(model=model, stream=True, extra_body=body)
        # The SDK's own post, with the body as it goes on the wire: `chat.completions.create`
        # also walks its typed parameters (the model's Literal of every model name is hashed
        # on each call), ~1 ms per request here: on a tool step, it is between the tool's
        # result and the request that carries it (benchmarks/tool_calls.py).
        # Chunks come as the JSON the server sent (`AsyncStream[object]`): building the SDK's
        # typed chunk models was about half of the CPU time per delta, and `_events` reads
        # four fields of each. The SDK still does the HTTP, the SSE decoding, in-stream
        # errors, retries and the error types.
        import openai
        from openai.types.chat import ChatCompletion

        body: dict[str, Any] = {"model": request.model, "stream": True,
                                "messages": request.messages}
        if self._include_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(self._chat_params(request.params))
        if request.tools:
            body["tools"] = request.tools
        return await self._ready().post(
            "/chat/completions", cast_to=ChatCompletion, body=body,
            options={"security": {"bearer_auth": True}}, stream=True,
            stream_cls=openai.AsyncStream[object])

    def _chat_params(self, params: GenerationParams) -> dict[str, Any]:
        """Only the params that are set: None means the server's own default."""
        body: dict[str, Any] = {}
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
        if params.max_tokens is not None:
            body[self.endpoint.max_tokens_field] = params.max_tokens
        if params.reasoning_effort:
            body["reasoning_effort"] = params.reasoning_effort
        return body

    async def _events(self, sdk_stream: Any) -> AsyncIterator[StreamEvent]:
        """Chunks -> events. The response is closed however the iteration ends."""
        finish_reason: str | None = None
        usage: Usage | None = None
        received_any = False
        calls: dict[int, list[str]] = {}  # index -> [id, name, argument pieces...]
        try:
            async for chunk in sdk_stream:
                received_any = True
                if not isinstance(chunk, dict):
                    log.warning("a stream chunk that is not a JSON object: %.200r", chunk)
                    continue
                if isinstance(found := chunk.get("usage"), dict):
                    usage = _usage(found)
                choices = chunk.get("choices")
                for choice in choices if isinstance(choices, list) else ():
                    if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                        continue
                    delta = choice.get("delta")
                    if isinstance(delta, dict):  # once per token: kept lean
                        if (reasoning := _reasoning(delta)) is not None:
                            yield ReasoningDelta(reasoning)
                        if isinstance(content := delta.get("content"), str):
                            yield TextDelta(content)
                        if isinstance(tool_calls := delta.get("tool_calls"), list):
                            _gather_calls(calls, tool_calls)
                    if isinstance(reason := choice.get("finish_reason"), str) and reason:
                        finish_reason = reason
        except Exception as exc:
            yield Failed(self._stream_error(exc, received_any))
            return
        finally:
            await sdk_stream.close()
        if usage is not None:
            yield usage
        if nameless := [i for i, c in calls.items() if not c[1]]:
            log.warning("tool calls without a name ignored (indexes %s)", nameless)
        if named := {i: c for i, c in calls.items() if c[1]}:
            yield ToolCallsRequested(tuple(
                ToolCallRequest(c[0] or f"call_{i}", c[1], "".join(c[2:]))
                for i, c in sorted(named.items())))
            finish_reason = finish_reason or "tool_calls"
        if finish_reason is None:
            # The body ended cleanly but the reply never said it was done: a proxy or the
            # server dropped the rest.
            yield Failed(errors.interrupted("the server ended the stream before the reply "
                                            "was complete"))
            return
        yield Finished(finish_reason)

    # -- error mapping -------------------------------------------------------------------

    def _is_stream_options_rejection(self, exc: openai.APIStatusError) -> bool:
        if self._include_usage and exc.status_code in (400, 422) and "stream_options" in (
            errors.status_detail(exc)
        ):
            log.info("server rejects stream_options; continuing without usage reports")
            self._include_usage = False
            return True
        return False

    def _status_error(self, exc: openai.APIStatusError, request: ChatRequest) -> ChatError:
        status = exc.status_code
        words = errors.status_words_of(exc)
        detail = words.text
        log.warning("HTTP %s from %s: %s", status, self.endpoint.base_url, words.details)
        if status in (401, 403):
            if self.endpoint.api_key is None:
                return errors.no_key(self.endpoint.base_url)
            return errors.auth_rejected(detail, status)
        if request.has_images and status not in (404, 429) and _IMAGE_REFUSAL.search(detail):
            return errors.images_rejected(request.model, status, detail)
        if (request.tools and status in (400, 404, 422, 500) and _TOOLS_REFUSAL.search(detail)):
            return errors.tools_rejected(request.model, status, detail)
        if status == 404:
            if "model" in detail.lower():
                return errors.model_not_found(request.model, detail)
            if self.endpoint.api == ApiFlavour.RESPONSES:
                return errors.no_responses_endpoint(self.endpoint.base_url, detail)
            return errors.no_chat_endpoint(self.endpoint.base_url, detail)
        if status == 429:
            return errors.rate_limited(detail, errors.retry_after_s(exc.response.headers))
        if status >= 500:
            return errors.server_error(status, words.said, words.details)
        if rejected := _rejected_settings(request, detail):
            return errors.param_rejected(request.model, rejected, status, detail)
        return errors.bad_request(status, words.said, words.details)

    def _models_status_error(self, exc: openai.APIStatusError) -> ChatError:
        if exc.status_code in (404, 405):
            detail = errors.status_detail(exc)
            log.warning("no model list at %s: HTTP %s %s", self.endpoint.base_url,
                        exc.status_code, detail)
            return errors.no_model_list(self.endpoint.base_url, exc.status_code, detail)
        return self._status_error(exc, ChatRequest("", []))

    def _retry_delay(
        self, exc: openai.APIStatusError, error: ChatError, attempt: int
    ) -> float | None:
        if exc.status_code not in RETRYABLE_STATUS or attempt >= self._retry.attempts:
            return None
        delay = errors.retry_after_s(exc.response.headers)
        if delay is None:
            delay = float(2**attempt)  # 1 s, 2 s, 4 s ...
        return delay if delay <= self._retry.max_wait_s else None

    def _request_error(self, exc: Exception, timeout_s: float | None = None,
                       *, quiet: bool = False) -> ChatError:
        import openai  # requests are made after prepare(): this only looks it up

        url = self.endpoint.base_url
        level = logging.DEBUG if quiet else logging.WARNING
        if isinstance(exc, openai.APITimeoutError):
            log.log(level, "timeout before the first byte from %s", url)
            return errors.no_first_byte(url, timeout_s or self.endpoint.read_timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            cause = errors.root_cause(exc)
            log.log(level, "cannot connect to %s: %s", url, cause)
            return errors.connection_failed(url, cause)
        log.error("unexpected error in a request to %s", url, exc_info=exc)
        return errors.unexpected(repr(exc))

    def _stream_error(self, exc: Exception, received_any: bool) -> ChatError:
        import openai  # streams exist after prepare(): this only looks it up

        if isinstance(exc, openai.APITimeoutError):
            if not received_any:
                return errors.no_first_byte(self.endpoint.base_url, self.endpoint.read_timeout_s)
            return errors.interrupted(
                f"the server sent nothing for {self.endpoint.read_timeout_s:g} s"
            )
        if isinstance(exc, openai.APIConnectionError):
            log.warning("stream cut: %s", errors.root_cause(exc))
            return errors.interrupted("the connection to the server was lost")
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc, ChatRequest("", []))
        if isinstance(exc, openai.APIError):  # an in-stream {"error": ...} event
            log.warning("in-stream error: %s (%r)", exc.message, exc.body)
            return errors.stream_error(exc.message, repr(exc.body))
        if isinstance(exc, json.JSONDecodeError | ValueError | TypeError | AttributeError):
            log.warning("malformed chunk: %r", exc)
            return errors.malformed(repr(exc))
        log.error("unexpected error while streaming", exc_info=exc)
        return errors.unexpected(repr(exc))


def _vectors(content: bytes, count: int) -> list[list[float]]:
    """The vectors of an /embeddings answer, ordered by their `index`."""
    data = json.loads(content)["data"]
    ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
    vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    if len(vectors) != count or not vectors or len({len(v) for v in vectors}) != 1 or (
            not vectors[0]):
        raise ValueError(f"{len(vectors)} vectors of uneven or no length for {count} texts")
    return vectors


def _rejected_settings(request: ChatRequest, detail: str) -> list[str]:
    """The settings the user set that the server's refusal names (none: a plain 400)."""
    named = []
    for name, (pattern, label) in _PARAM_NAMES.items():
        if getattr(request.params, name) is not None and re.search(pattern, detail):
            named.append(label)
    return named


def _gather_calls(calls: dict[int, list[str]], deltas: list[Any]) -> None:
    """Add one chunk's tool-call deltas (JSON objects): the first of a call brings its id and
    name, the rest pieces of its arguments (parallel calls are told apart by `index`)."""
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index")
        call = calls.setdefault(index if isinstance(index, int) else len(calls), ["", ""])
        if isinstance(call_id := delta.get("id"), str) and call_id:
            call[0] = call_id
        function = delta.get("function")
        if isinstance(function, dict):
            if isinstance(name := function.get("name"), str) and name and not call[1]:
                call[1] = name
            if isinstance(arguments := function.get("arguments"), str) and arguments:
                call.append(arguments)


def _reasoning(extra: dict[str, Any]) -> str | None:
    """The thinking text of a delta, which servers send under either of two names."""
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    return reasoning if isinstance(reasoning, str) and reasoning else None


def _usage(usage: dict[str, Any]) -> Usage:
    def count(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(prompt_tokens=count("prompt_tokens"),
                 completion_tokens=count("completion_tokens"),
                 total_tokens=count("total_tokens"))


def _http_client(endpoint: Endpoint) -> Any:
    """None keeps the SDK's own client, which honours the system proxy (httpx trust_env)."""
    import openai

    if endpoint.proxy_url:
        _check_proxy(endpoint.proxy_url)
        return openai.DefaultAsyncHttpxClient(proxy=endpoint.proxy_url)
    if endpoint.proxy_url == "" or endpoint.is_loopback:
        # A local server behind the company proxy is never what the user meant.
        return openai.DefaultAsyncHttpxClient(trust_env=False)
    return None


def _endpoint_error(endpoint: Endpoint) -> ChatError | None:
    """What is wrong with the base URL or proxy as written (no SDK needed to tell)."""
    try:
        _check_base_url(endpoint.base_url)
    except ValueError as exc:
        return errors.bad_base_url(endpoint.base_url, str(exc))
    try:
        if endpoint.proxy_url:
            _check_proxy(endpoint.proxy_url)
    except ValueError as exc:
        return errors.bad_proxy(endpoint.proxy_url or "", str(exc))
    return None


def _check_proxy(proxy_url: str) -> None:
    parts = urlsplit(proxy_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it must look like http://host:port")


def _build_sdk(endpoint: Endpoint) -> tuple[openai.AsyncOpenAI | None, ChatError | None]:
    if (error := _endpoint_error(endpoint)) is not None:
        return None, error
    try:
        http_client = _http_client(endpoint)
    except ValueError as exc:
        return None, errors.bad_proxy(endpoint.proxy_url or "", str(exc))
    try:
        return _sdk_client(endpoint, http_client), None
    except Exception as exc:  # httpx's InvalidURL ("Invalid IPv4 address") is no ValueError
        return None, errors.bad_base_url(endpoint.base_url, str(exc))


def _check_base_url(base_url: str) -> None:
    if not base_url.strip():
        raise ValueError("it is empty")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it must start with http:// or https:// and name a host")


def _sdk_client(endpoint: Endpoint, http_client: Any) -> openai.AsyncOpenAI:
    import openai

    common: dict[str, Any] = {
        "api_key": endpoint.api_key or PLACEHOLDER_KEY,
        "timeout": openai.Timeout(endpoint.read_timeout_s, connect=endpoint.connect_timeout_s),
        "max_retries": 0,  # we retry ourselves, so the window can say so
        "default_headers": dict(endpoint.headers) or None,
        "http_client": http_client,
    }
    if endpoint.is_azure:
        # Requests go to {resource}/openai/deployments/{deployment or model}/...?api-version=
        # with an `api-key` header; the user may have pasted the endpoint with /openai.
        root = endpoint.base_url.rstrip("/").removesuffix("/openai")
        return openai.AsyncAzureOpenAI(
            azure_endpoint=root,
            azure_deployment=endpoint.azure_deployment or None,
            api_version=endpoint.azure_api_version,
            **common,
        )
    return openai.AsyncOpenAI(base_url=endpoint.base_url, **common)
