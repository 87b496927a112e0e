"""Prompts and resources of MCP servers (core/tools/catalog.py, ToolHost) over the real test
server, stdio and Streamable HTTP: listed with the tools, fetched with arguments, read, and
turned into what a message takes (text, documents, images) or refused in words."""

from __future__ import annotations

import asyncio
import base64

import mcp.types as t
import pytest

from desktop_chat.core.model.message import Attachment
from desktop_chat.core.tools.catalog import (
    PromptArgument,
    ResourceData,
    attachable,
    prompt_content,
)
from desktop_chat.core.tools.config import ServerConfig, Transport
from desktop_chat.core.tools.host import ToolError, ToolHost
from tests.support import mcp_server
from tests.support.tools import settled, stdio_config


def test_prompts_and_resources_over_stdio_and_http() -> None:
    async def scenario() -> None:
        host = ToolHost()
        with mcp_server.HttpServer() as http:
            host.start([stdio_config("stdio"), ServerConfig("http", Transport.HTTP,
                                                            url=http.url)])
            await settled(host)
            for name in ("stdio", "http"):
                prompts = {p.name: p for p in host.prompts() if p.server == name}
                assert list(prompts) == ["review", "brief", "with-notes"]
                assert prompts["review"].arguments == (
                    PromptArgument("code", "", True), PromptArgument("language", "", False))
                content = await host.get_prompt(prompts["review"], {"code": "x = 1"})
                assert content.text == "Please review this Python code for bugs:\n\nx = 1"
                embedded = await host.get_prompt(prompts["with-notes"], {})
                assert [r.text for r in embedded.resources] == [mcp_server.NOTES]
                resources = {r.name: r for r in host.resources() if r.server == name}
                assert list(resources) == ["notes", "pixel.png", "archive.bin"]
                [notes] = await host.read_resource(resources["notes"])
                assert attachable(notes) == (mcp_server.NOTES.encode(), "notes.md")
                [template] = [t for t in host.resource_templates() if t.server == name]
                assert template.variables == ("topic",)
                [topic] = await host.read_resource(template.resource({"topic": "a/b c"}))
                assert topic.uri == "memo://topics/a%2Fb%20c"  # each value encoded
                assert topic.text == "Notes on a/b c: nothing yet."
                [pixel] = await host.read_resource(resources["pixel.png"])
                assert attachable(pixel) == Attachment("image/png", mcp_server.PIXEL,
                                                       "pixel.png")
            with pytest.raises(ToolError, match="could not be fetched"):
                await host.get_prompt(prompts["review"], {})  # `code` is required
            await host.aclose()

    asyncio.run(scenario())


def test_what_a_resource_becomes() -> None:
    pdf = ResourceData("r://a", "report", "application/pdf", data=b"%PDF-1.4 ...")
    assert attachable(pdf) == (b"%PDF-1.4 ...", "report.pdf")
    assert attachable(ResourceData("r://b", "data", "application/json", text="{}")) == (
        b"{}", "data.json")
    assert attachable(ResourceData("r://c", "c.txt", "", text="hi")) == (b"hi", "c.txt")
    with pytest.raises(ValueError, match="'blob' is application/zip, which cannot be sent"):
        attachable(ResourceData("r://d", "blob", "application/zip", data=b"\x00\x01"))
    with pytest.raises(ValueError, match="is empty"):
        attachable(ResourceData("r://e", "nothing", "image/png", data=b""))


def test_a_prompt_that_speaks_as_the_assistant_says_so() -> None:
    result = t.GetPromptResult(messages=[
        t.PromptMessage(role="user", content=t.TextContent(type="text", text="Hi")),
        t.PromptMessage(role="assistant", content=t.TextContent(type="text", text="Hello")),
        t.PromptMessage(role="user", content=t.ImageContent(
            type="image", data=base64.b64encode(mcp_server.PIXEL).decode(),
            mime_type="image/png")),
        t.PromptMessage(role="user", content=t.ImageContent(
            type="image", data=base64.b64encode(b"not an image").decode(),
            mime_type="image/png"))])
    content = prompt_content(result)
    assert content.text == ("User: Hi\n\nAssistant: Hello\n\n"
                            "User: [an image (image/png) that could not be used]")
    assert [a.data for a in content.images] == [mcp_server.PIXEL]
