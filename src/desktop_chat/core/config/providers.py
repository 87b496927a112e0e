"""Provider profiles: where requests go, how they are shaped, and which key they use.

A profile is plain data. Presets give a new profile its defaults (base URL, whether a key is
needed, which environment variable may hold it, extra headers); the user can change any of
it. The key itself is never part of a profile: `key_ref` names its entry in the keychain
(`core/config/secrets.py`). `Endpoint.for_profile(profile, key)` is what the client is built from.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit


class ApiFlavour(enum.StrEnum):
    CHAT = "chat_completions"  # every OpenAI-compatible server speaks it
    RESPONSES = "responses"  # OpenAI's Responses API


class ReasoningEffort(enum.StrEnum):
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling parameters; None means "the server's default" and is not sent."""

    temperature: float | None = None  # 0 .. 2
    top_p: float | None = None  # 0 .. 1
    max_tokens: int | None = None  # > 0
    reasoning_effort: str | None = None  # a ReasoningEffort value, for models that take it

    def merged(self, override: GenerationParams | None) -> GenerationParams:
        """`override`'s set values win (per-conversation overrides over the defaults)."""
        if override is None:
            return self
        return GenerationParams(
            **{
                f.name: getattr(override, f.name)
                if getattr(override, f.name) is not None
                else getattr(self, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True, slots=True)
class Profile:
    id: str  # stable; also the keychain entry name by default
    name: str
    preset: str = "custom"  # a key of PRESETS
    base_url: str = ""
    model: str = ""  # the model used for new conversations (the last one picked)
    api: ApiFlavour = ApiFlavour.CHAT
    needs_key: bool = False
    key_env: str = ""  # environment variable consulted when no key is stored, e.g. OPENAI_API_KEY
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    azure_api_version: str = ""  # non-empty: an Azure OpenAI resource (base_url = its endpoint)
    azure_deployment: str = ""
    context_window: int = 0  # tokens; 0: unknown, nothing is trimmed
    input_price: float = 0.0  # USD per million tokens; 0: unknown, no cost is shown
    output_price: float = 0.0
    models: tuple[str, ...] = ()  # the last model list the server gave
    gguf_path: str = ""  # the built-in offline engine: the model file it serves
    # Documents searched by meaning as well as words (core/chat/retrieval.py): the server's
    # embeddings model, used while `embeddings` is on
    embeddings: bool = False
    embedding_model: str = ""
    # The model takes images: a scanned PDF's pages are offered to it as pictures
    sees_images: bool = True

    @property
    def key_ref(self) -> str:
        return self.id

    @property
    def is_azure(self) -> bool:
        return bool(self.azure_api_version)

    @property
    def is_offline(self) -> bool:
        return self.preset == OFFLINE

    @property
    def embeddings_model(self) -> str:
        """The embeddings model hybrid retrieval uses; "" when it is off."""
        return self.embedding_model.strip() if self.embeddings else ""

    @property
    def takes_images(self) -> bool:
        return self.sees_images and not self.is_offline

    @property
    def has_prices(self) -> bool:
        return self.input_price > 0 or self.output_price > 0


@dataclass(frozen=True, slots=True)
class Preset:
    key: str
    label: str
    base_url: str
    needs_key: bool = False
    key_env: str = ""
    model: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    azure_api_version: str = ""
    context_window: int = 0
    local_port: int | None = None  # probed on 127.0.0.1 by auto-detection
    hint: str = ""  # shown under the base URL field

    def new_profile(self, profile_id: str, name: str | None = None) -> Profile:
        return Profile(
            id=profile_id,
            name=name or self.label,
            preset=self.key,
            base_url=self.base_url,
            model=self.model,
            needs_key=self.needs_key,
            key_env=self.key_env,
            extra_headers=dict(self.extra_headers),
            azure_api_version=self.azure_api_version,
            context_window=self.context_window,
        )


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
OPENAI = "openai"
AZURE = "azure"
OFFLINE = "offline"
APP_URL = "https://github.com/desktop-chat/desktop-chat"
AZURE_API_VERSION = "2024-10-21"

_PRESETS = (
    Preset(OPENAI, "OpenAI", "https://api.openai.com/v1", needs_key=True,
           key_env="OPENAI_API_KEY", model="gpt-4o-mini", context_window=128_000),
    Preset(AZURE, "Azure OpenAI", "https://YOUR-RESOURCE.openai.azure.com", needs_key=True,
           key_env="AZURE_OPENAI_API_KEY", azure_api_version=AZURE_API_VERSION,
           context_window=128_000,
           hint="Your resource's endpoint; the model box takes the deployment name."),
    Preset("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", needs_key=True,
           key_env="OPENROUTER_API_KEY", model="openai/gpt-4o-mini", context_window=128_000,
           extra_headers={"HTTP-Referer": APP_URL, "X-Title": "desktop-chat"}),
    Preset("groq", "Groq", "https://api.groq.com/openai/v1", needs_key=True,
           key_env="GROQ_API_KEY", model="llama-3.1-8b-instant", context_window=128_000),
    Preset("ollama", "Ollama", "http://127.0.0.1:11434/v1", local_port=11434,
           context_window=8192),
    Preset("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", local_port=1234,
           context_window=8192),
    Preset("llamacpp", "llama.cpp server", "http://127.0.0.1:8080/v1", local_port=8080,
           context_window=8192),
    Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", local_port=8000, context_window=8192),
    Preset(OFFLINE, "Offline (built-in)", "", context_window=8192,
           hint="Runs a GGUF model on this computer; no account or network needed."),
    Preset("custom", "Custom (OpenAI-compatible)", "", hint="Any server that speaks the "
           "OpenAI Chat Completions API, e.g. https://host/v1"),
)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.key: p for p in _PRESETS})
LOCAL_PRESETS = tuple(p for p in _PRESETS if p.local_port is not None)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go and how they are authenticated and routed.

    `needs_key=None` is decided from the host (api.openai.com and Azure need one) and is a
    plain bool once constructed. `proxy_url`: None honours the system proxy (except for
    loopback servers, which are always reached directly), "" means no proxy at all, anything
    else is a manual HTTP/HTTPS proxy.
    """

    base_url: str
    api_key: str | None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 90.0
    headers: Mapping[str, str] = field(default_factory=dict)
    api: ApiFlavour = ApiFlavour.CHAT
    azure_api_version: str = ""  # non-empty: an Azure OpenAI resource at base_url
    azure_deployment: str = ""  # empty: the request's model names the deployment
    needs_key: bool | None = None
    proxy_url: str | None = None

    def __post_init__(self) -> None:
        if self.needs_key is None:
            object.__setattr__(self, "needs_key", self.is_openai_host or self.is_azure)

    @classmethod
    def for_profile(
        cls,
        profile: Profile,
        api_key: str | None,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 90.0,
        proxy_url: str | None = None,
    ) -> Endpoint:
        return cls(
            profile.base_url,
            api_key,
            connect_timeout_s,
            read_timeout_s,
            headers=dict(profile.extra_headers),
            api=ApiFlavour(profile.api),
            azure_api_version=profile.azure_api_version,
            azure_deployment=profile.azure_deployment,
            needs_key=profile.needs_key,
            proxy_url=proxy_url,
        )

    @property
    def host(self) -> str:
        try:
            return (urlsplit(self.base_url).hostname or "").lower()
        except ValueError:  # "http://[oops" typed into Settings: no host, not a crash
            return ""

    @property
    def is_openai_host(self) -> bool:
        return self.host.endswith("api.openai.com")

    @property
    def is_azure(self) -> bool:
        return bool(self.azure_api_version)

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    @property
    def max_tokens_field(self) -> str:
        """OpenAI and Azure deprecated `max_tokens` (reasoning models refuse it); every other
        compatible server knows only `max_tokens`."""
        return "max_completion_tokens" if self.is_openai_host or self.is_azure else "max_tokens"


def preset(key: str) -> Preset:
    return PRESETS.get(key, PRESETS["custom"])


def new_profile_id(name: str, taken: set[str] | frozenset[str]) -> str:
    """A readable, unique id: "openai", "openai-2", "my-server" ..."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "profile"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# -- checks of what the user types into a profile: None, or what is wrong and how to fix it --

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def with_scheme(url: str) -> str:
    """`url` as typed, with http:// put in front of a local address typed without a scheme
    ("127.0.0.1:8080", "localhost:1234/v1", "gpu-box:8000") and https:// in front of any
    other host ("api.example.com/v1"). A URL with a scheme is returned as it is."""
    url = url.strip()
    if not url or _SCHEME.match(url):
        return url
    try:
        host = urlsplit(f"//{url}").hostname or ""
    except ValueError:
        return url  # "[oops": base_url_problem says what is wrong
    return f"{'http' if is_local_host(host) else 'https'}://{url}"


def is_local_host(host: str) -> bool:
    """This computer or the local network: loopback, private addresses, "localhost", a name
    without a dot (a machine on the LAN) or ending in .local / .lan / .internal / .home."""
    host = host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in LOOPBACK_HOSTS or "." not in host or host.endswith(
            (".local", ".lan", ".internal", ".home", ".localhost"))
    return address.is_loopback or address.is_private or address.is_link_local


def api_root_candidates(url: str) -> list[str]:
    """Where the OpenAI-compatible API may be for `url`: a bare host (no path) is tried
    with /v1 first (Ollama, LM Studio, llama.cpp and vLLM serve it there), then as typed."""
    url = with_scheme(url).rstrip("/")
    try:
        bare = urlsplit(url).path in ("", "/") and not urlsplit(url).query
    except ValueError:
        bare = False
    return [f"{url}/v1", url] if bare else [url]


def base_url_problem(url: str) -> str | None:
    parts = urlsplit(with_scheme(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The base URL must start with http:// or https:// and name a host."
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "The port in the base URL is not a number between 0 and 65535."
    return None


def env_name_problem(name: str) -> str | None:
    if name and not _ENV_NAME.match(name):
        return "The key's environment variable may hold only letters, digits and _ ."
    return None


def parse_headers(text: str) -> dict[str, str]:
    """One "Name: value" per line; blank lines are ignored. Raises ValueError with user text."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name) or not value:
            raise ValueError(f"Extra headers, line {number}: write it as \"Name: value\" "
                             f"(got \"{line.strip()[:40]}\").")
        headers[name] = value
    return headers


def format_headers(headers: Mapping[str, str]) -> str:
    """The text `parse_headers` reads back."""
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


@dataclass(frozen=True, slots=True)
class PromptPreset:
    """A saved starting point: system prompt, model and parameters, applied in one go."""

    name: str
    system_prompt: str = ""
    model: str = ""  # empty: keep the profile's model
    params: GenerationParams = GenerationParams()


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    """What one conversation overrides; None keeps the app-wide value."""

    model: str | None = None
    system_prompt: str | None = None
    params: GenerationParams | None = None
    tools_off: bool = False  # the user turned tools off in this conversation

    @property
    def is_empty(self) -> bool:
        return (self.model is None and self.system_prompt is None and self.params is None
                and not self.tools_off)
