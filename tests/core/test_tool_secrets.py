"""Secrets in MCP server settings go to the keychain, never into tools.json or the log."""

from __future__ import annotations

from pathlib import Path

from keyring.backends import fail

from desktop_chat.core import logs
from desktop_chat.core.config.secrets import Secrets
from desktop_chat.core.tools.config import ServerConfig, Transport
from desktop_chat.core.tools.consent import ToolSettings, ToolSettingsFile
from desktop_chat.core.tools.secrets import MARK, ToolSecrets
from tests.support.keyrings import MemoryKeyring

TOKEN = "ghp_" + "A1b2C3d4" * 5


def server() -> ServerConfig:
    return ServerConfig("github", Transport.HTTP, url="https://example.com/mcp",
                        headers={"Authorization": f"Bearer {TOKEN}", "X-Team": "core"},
                        env={"GITHUB_TOKEN": TOKEN})


def test_secrets_go_to_the_keychain_and_come_back(tmp_path: Path) -> None:
    keychain = MemoryKeyring()
    tool_secrets = ToolSecrets(Secrets(tmp_path, {}, backend=keychain))
    stashed, problems = tool_secrets.stash(server())
    assert problems == []
    assert stashed.headers == {"Authorization": MARK, "X-Team": "core"}
    assert stashed.env == {"GITHUB_TOKEN": MARK}
    program = ServerConfig("gh", command="github-mcp", env={"GITHUB_TOKEN": TOKEN, "LANG": "C"})
    stashed_program, _ = tool_secrets.stash(program)
    ToolSettingsFile(tmp_path).save(ToolSettings(servers=(stashed, stashed_program)))
    assert TOKEN not in (tmp_path / "tools.json").read_text()
    loaded = ToolSettingsFile(tmp_path).load().servers
    again = ToolSecrets(Secrets(tmp_path, {}, backend=keychain))
    filled = [again.fill(config) for config in loaded]
    assert filled[0][0].headers == server().headers and filled[0][1] == []
    assert filled[1] == (program, [])


def test_without_a_keychain_a_secret_is_kept_for_the_session_and_said_so(
        tmp_path: Path) -> None:
    secrets = Secrets(tmp_path, {}, backend=fail.Keyring())
    stashed, problems = ToolSecrets(secrets).stash(server())
    assert stashed.env == {"GITHUB_TOKEN": MARK}
    assert any("for this session only" in p for p in problems)
    filled, missing = ToolSecrets(secrets).fill(stashed)  # same session: still there
    assert filled == server() and missing == []
    later, missing = ToolSecrets(Secrets(tmp_path, {}, backend=fail.Keyring())).fill(stashed)
    assert later.env == {"GITHUB_TOKEN": ""}
    assert "enter it again in Settings → Tools" in missing[0]


def test_secret_values_never_reach_the_log(tmp_path: Path) -> None:
    secrets = Secrets(tmp_path, {}, backend=MemoryKeyring(), on_secret=logs.add_secret)
    ToolSecrets(secrets).redact(server())
    assert TOKEN not in logs.redact_secrets(f"server said: Bearer {TOKEN} is wrong")
