"""Which server the chat talks to: the active profile, its key and client, the model list,
local server discovery, and applying what the settings dialog and the welcome panel decide
(the offline engine itself is `EngineSupervisor`'s). A QObject adapter over core (no widgets,
no dialogs); its background work runs in its `Tasks`, whose failures reach `error`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop_chat.core.config import first_run
from desktop_chat.core.config.providers import (
    OPENAI,
    Endpoint,
    Profile,
    api_root_candidates,
    preset,
)
from desktop_chat.core.config.secrets import KeychainStatus, KeySource, Secrets, SecretsError
from desktop_chat.core.config.settings import Settings, SettingsFile, profile_for_url
from desktop_chat.core.engine import offline as engines
from desktop_chat.core.llm import errors
from desktop_chat.core.llm.client import ChatClient, RetryPolicy
from desktop_chat.core.llm.discovery import PortOf, chat_models, probe_local
from desktop_chat.core.llm.errors import ChatError
from desktop_chat.ui.controller import ChatController
from desktop_chat.ui.engine_supervisor import EngineSupervisor
from desktop_chat.ui.tasks import Tasks

log = logging.getLogger("desktop_chat.connections")

MODEL_LIST_TIMEOUT_S = 10.0
KeyChange = tuple[str, str | None, KeySource | str]


class Connections(QObject):
    configured = Signal(object)  # the active Profile, or None when nothing is set up yet
    models_loaded = Signal(list)
    local_found = Signal(list)  # list[Found]
    probing = Signal(bool)
    error = Signal(str)  # for the window's error banner
    notice = Signal(str)  # a start-up notice (no key), kept until the user acts
    progress = Signal(str)  # for the status bar ("Loading the model…"), "" when done

    controller: ChatController  # set by the composition root, once built with initial_client()

    def __init__(self, loop: asyncio.AbstractEventLoop, settings_file: SettingsFile,
                 secrets: Secrets, data_dir: Path, engine: engines.LocalEngine | None = None,
                 parent: QObject | None = None, *,
                 first_frame: Callable[[], Awaitable[None]] | None = None) -> None:
        """`first_frame`: start-up requests (model list, discovery) wait for it, so that
        the window is on screen before anything loads the SDK (ui/deferred.py)."""
        super().__init__(parent)
        self._first_frame = first_frame
        self._say_missing_key = True  # once, at start-up, as soon as the key is known
        self.settings_file = settings_file
        self.secrets = secrets
        self.tasks = Tasks(self, loop=loop)
        self.tasks.failed.connect(self.error)
        self.offline = EngineSupervisor(self.tasks, data_dir, engine, parent=self)
        self.offline.progress.connect(self.progress)
        self.offline.ready.connect(self._engine_ready)
        self.offline.failed.connect(self._engine_failed)
        self.offline.died.connect(self._engine_died)
        self._models_task: asyncio.Task[Any] | None = None
        self._current: tuple[Profile, ChatClient] | None = None
        self._startup_key: tuple[Profile, str | None, KeySource] | None = None
        self.port_of: PortOf | None = None  # where discovery looks (tests: a loopback server)

    # -- state ----------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.settings_file.settings

    @property
    def profile(self) -> Profile | None:
        return self.settings.active()

    def keychain(self) -> KeychainStatus:
        return self.secrets.status()

    def key_sources(self) -> Mapping[str, KeySource]:
        return {p.key_ref: self.secrets.get(p)[1] for p in self.settings.profiles}

    def initial_client(self) -> ChatClient:
        """The client for the active profile as the app starts (before `activate`). Its key
        is looked up with its first request, in a worker thread: the keychain (keyring,
        D-Bus) costs the first frame nothing."""
        profile = self.profile
        if profile is None or profile.is_offline:
            # never used: sending is blocked until a provider is chosen / the engine runs
            return ChatClient(Endpoint("http://127.0.0.1:9/v1", None, needs_key=False))
        client = self.make_client(profile, None,
                                  key_lookup=lambda: self._look_up_startup_key(profile))
        self._current = (profile, client)
        return client

    def _look_up_startup_key(self, profile: Profile) -> str | None:
        """In a worker thread (ChatClient.prepare)."""
        key, source = self.secrets.get(profile)
        log.info("profile %s: key %s", profile.id, source.value)
        self._startup_key = (profile, key, source)
        return key

    def _key(self, profile: Profile) -> tuple[str | None, KeySource]:
        """The profile's key. The first `activate` after start-up takes the one read for the
        start-up client instead of asking the keychain again."""
        known, self._startup_key = self._startup_key, None
        if known is not None and known[0] == profile:
            return known[1], known[2]
        return self.secrets.get(profile)

    def endpoint_for(self, profile: Profile, key: str | None) -> Endpoint:
        s = self.settings
        return Endpoint.for_profile(profile, key, connect_timeout_s=s.connect_timeout_s,
                                    read_timeout_s=s.read_timeout_s, proxy_url=s.proxy())

    def make_client(self, profile: Profile, key: str | None, *,
                    key_lookup: Callable[[], str | None] | None = None) -> ChatClient:
        s = self.settings
        return ChatClient(self.endpoint_for(profile, key),
                          RetryPolicy(s.rate_limit_retries, s.max_retry_wait_s),
                          key_lookup=key_lookup)

    # -- (re)configuring the chat ---------------------------------------------------------

    def activate(self) -> None:
        """Point the controller at the active profile (after start-up or any change)."""
        profile = self.profile
        if profile is None or not profile.is_offline:
            self.offline.stop()
        if profile is None:
            self.controller.block("Choose how to connect first (see the panel above).")
            self.configured.emit(None)
            return
        if profile.is_offline:
            self.controller.block("The offline engine is still starting…")
            self.configured.emit(profile)
            self.offline.start(profile.gguf_path)
            return
        current = self._current
        if current is not None and current[0] == profile and current[1].key_pending:
            client = current[1]  # the start-up client: it looks up its key itself
            log.info("profile %s (%s, %s)", profile.id, profile.base_url, profile.api.value)
        else:
            key, source = self._key(profile)
            log.info("profile %s (%s, %s): key %s", profile.id, profile.base_url,
                     profile.api.value, source.value)
            if current is not None and current[0] == profile and current[1].endpoint == (
                    self.endpoint_for(profile, key)):
                client = current[1]  # nothing that matters changed: keep the connection
            else:
                client = self.make_client(profile, key)
        self._current = (profile, client)
        self._configure(client, profile, profile.model)
        self.refresh_models()

    def _configure(self, client: ChatClient, profile: Profile, model: str) -> None:
        s = self.settings
        self.controller.block(None)
        self.controller.set_document_share(s.document_share)
        self.controller.configure(
            client, profile, model, system_prompt=s.system_prompt, params=s.params,
            remember_model=lambda m, pid=profile.id: self.settings_file.update_profile(
                pid, model=m))
        self.configured.emit(profile)

    def refresh_models(self) -> None:
        if self._models_task is not None:
            self._models_task.cancel()
        self._models_task = self.tasks.start(self._load_models(), what="Loading the model list")

    async def _after_first_frame(self) -> None:
        if self._first_frame is not None:
            await self._first_frame()

    async def _load_models(self) -> None:
        profile = self.profile
        if profile is None:
            return
        known = list(profile.models)
        if known:
            self.models_loaded.emit(known)  # last known, until the server says
        await self._after_first_frame()
        if self.profile is None or self.profile.id != profile.id:
            return
        client = self.controller.client
        await client.prepare()  # the key, looked up off the GUI thread; the SDK
        if self._say_missing_key:
            self._say_missing_key = False
            endpoint = client.endpoint
            if endpoint.needs_key and endpoint.api_key is None:  # say so before the first send
                self.notice.emit(errors.no_key(endpoint.base_url).message)
        try:
            models = await client.list_models(MODEL_LIST_TIMEOUT_S)
            models = await chat_models(profile.base_url, models)
        except ChatError as exc:
            log.info("no model list from %s: %s", profile.base_url, exc.message)
            await self._try_v1(profile)
            return
        if self.profile is None or self.profile.id != profile.id:
            return
        self.settings_file.update_profile(profile.id, models=tuple(models))
        picked = not self.controller.model and bool(models)
        if picked:  # a server picked without naming a model
            self.controller.set_model(models[0])
        if picked or models != known:  # else the picker shows exactly this already
            self.models_loaded.emit(models)

    async def _try_v1(self, profile: Profile) -> None:
        """A base URL saved as a bare host ("http://127.0.0.1:11434") that does not answer:
        when the API answers under /v1 there, the profile is pointed at it."""
        candidates = api_root_candidates(profile.base_url)
        if len(candidates) < 2 or profile.is_offline:
            return
        try:
            await self.test_connection(dataclasses.replace(profile, base_url=candidates[0]),
                                       None)
        except ChatError:
            return
        if self.profile is not None and self.profile.id == profile.id:
            log.info("profile %s: the API answers at %s", profile.id, candidates[0])
            self.settings_file.update_profile(profile.id, base_url=candidates[0])
            self.activate()

    # -- settings dialog ------------------------------------------------------------------

    async def test_connection(self, profile: Profile, key: str | None) -> list[str]:
        """For "Test connection" / "Check key": lists the models or raises ChatError."""
        if key is None:
            key = self.secrets.get(profile)[0]
        else:
            self.secrets.redact(key)  # typed for this check: never in the log, even if wrong
        client = self.make_client(profile, key)
        try:
            return await chat_models(profile.base_url,
                                     await client.list_models(MODEL_LIST_TIMEOUT_S))
        finally:
            await client.aclose()

    def apply_settings(self, settings: Settings) -> None:
        self.secrets.plaintext_accepted = settings.plaintext_keys_accepted
        self.settings_file.replace(settings)
        self.activate()

    def apply_keys(self, changes: list[KeyChange]) -> None:
        """Store or forget keys (the dialog emits them after the settings, which were applied
        with the old key): a change to the active profile's key re-points the chat."""
        for ref, key, where in changes:
            try:
                if key is None:
                    self.secrets.forget(ref)
                else:
                    self.secrets.store(ref, key, KeySource(where),
                                       plaintext_accepted=self.settings.plaintext_keys_accepted)
            except SecretsError as exc:
                self.error.emit(exc.message)
        profile = self.profile
        if profile is not None and not profile.is_offline and any(
                ref == profile.key_ref for ref, _key, _where in changes):
            self.activate()

    # -- welcome panel --------------------------------------------------------------------

    def probe(self) -> None:
        self.tasks.start(self._probe(), what="Looking for local servers")

    async def _probe(self) -> None:
        self.probing.emit(True)
        try:
            await self._after_first_frame()
            found = await probe_local(port_of=self.port_of)
        finally:
            self.probing.emit(False)
        self.local_found.emit(found)

    async def check_openai_key(self, key: str) -> list[str]:
        return await self.test_connection(preset(OPENAI).new_profile("check"), key)

    async def check_server(self, base_url: str, key: str | None) -> list[str]:
        return await self.test_connection(profile_for_url(base_url, "", "check"), key or None)

    def use(self, choice: first_run.Choice) -> None:
        """Add the profile chosen on the welcome panel (`core.config.first_run` makes it),
        keep its key and switch to it."""
        key_notice = self._keep_key(choice.profile.key_ref, choice.key) if choice.key else None
        self.settings_file.replace(first_run.with_active(self.settings, choice.profile))
        self.activate()
        notice = " ".join(n for n in (key_notice, choice.notice) if n)
        if notice:  # after the switch, which clears the banner
            self.error.emit(notice)

    def _keep_key(self, ref: str, key: str) -> str | None:
        """In the keychain; without one, for this session only. Returns what to tell the
        user when the key is not in the keychain."""
        where = KeySource.KEYCHAIN if self.keychain().available else KeySource.SESSION
        try:
            self.secrets.store(ref, key, where)
        except SecretsError as exc:
            self.secrets.store(ref, key, KeySource.SESSION)
            return f"{exc.message} The key is kept for this session only."
        if where is KeySource.SESSION:
            return ("No keychain is available, so the key is kept for this session only. "
                    "Open Settings to choose another way to keep it.")
        return None

    # -- the offline engine ---------------------------------------------------------------

    def _engine_ready(self, base_url: str, model: str, context_size: int) -> None:
        profile = self.profile
        if profile is None or not profile.is_offline:
            return
        offline = dataclasses.replace(profile, base_url=base_url, needs_key=False, model=model,
                                      context_window=context_size or profile.context_window)
        self._configure(self.make_client(offline, None), offline, model)
        self.models_loaded.emit([model])

    def _engine_failed(self, message: str) -> None:
        self.controller.block(message)
        self.error.emit(message)

    def _engine_died(self, message: str) -> None:
        """Say so, rather than let the next message fail to connect."""
        self.controller.block(message)
        self.configured.emit(self.profile)
        self.error.emit(message)

    # -- background work ------------------------------------------------------------------

    async def idle(self) -> None:
        """Wait for background work (model list, discovery, engine start) to finish."""
        await self.tasks.idle()

    async def aclose(self) -> None:
        await self.tasks.aclose()
        await self.offline.aclose()
