"""What MCP servers offer besides tools: prompts (the composer's `/` commands) and resources
(context the user attaches to a message), as plain records of our own, and what getting a
prompt or reading a resource gives, in the shapes the rest of the app already takes: text,
images as `Attachment`s, documents as bytes with a name the document reader understands.

The SDK's objects never leave core/tools: `ToolHost` lists and fetches through the SDK and
converts with the functions here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from desktop_chat.core.model.message import Attachment, sniff_image

# The suffix a text resource's name gets from its type, so the document reader knows it
# (Markdown gets headings as places, HTML is read as text, not markup).
_SUFFIXES = {"text/markdown": ".md", "text/x-markdown": ".md", "text/html": ".html",
             "text/csv": ".csv", "application/json": ".json", "text/x-python": ".py",
             "application/xml": ".xml", "text/xml": ".xml"}
_DOCUMENT_BLOBS = {b"%PDF-": ".pdf", b"PK\x03\x04": ".docx"}


@dataclass(frozen=True, slots=True)
class PromptArgument:
    name: str
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class PromptInfo:
    server: str
    name: str
    description: str = ""
    arguments: tuple[PromptArgument, ...] = ()

    @property
    def label(self) -> str:
        """`server › prompt`, as the `/` menu shows it."""
        return f"{self.server} › {self.name}"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    server: str
    uri: str
    name: str
    description: str = ""
    mime: str = ""

    @property
    def label(self) -> str:
        return f"{self.server} › {self.name}"


@dataclass(frozen=True, slots=True)
class ResourceTemplate:
    """A family of resources named by a URI template (RFC 6570, e.g. `notes://{topic}`):
    the user fills in its variables, which gives one resource to read."""

    server: str
    uri_template: str
    name: str
    description: str = ""
    mime: str = ""
    variables: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.server} › {self.name}"

    @property
    def arguments(self) -> tuple[PromptArgument, ...]:
        """The variables, as a form asks for them (all needed)."""
        return tuple(PromptArgument(v, f"for {self.uri_template}", True)
                     for v in self.variables)

    def resource(self, values: dict[str, str]) -> ResourceInfo:
        """The resource these values name (each value percent-encoded as the template
        says)."""
        from mcp.shared.uri_template import UriTemplate

        uri = UriTemplate.parse(self.uri_template).expand(values)
        shown = ", ".join(values[v] for v in self.variables if values.get(v))
        return ResourceInfo(self.server, uri, f"{self.name} ({shown})" if shown else self.name,
                            self.description, self.mime)


@dataclass(frozen=True, slots=True)
class ResourceData:
    """One piece of what reading a resource gave: `text`, or binary `data`."""

    uri: str
    name: str
    mime: str = ""
    text: str | None = None
    data: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class PromptContent:
    """A prompt as the composer takes it: its text (the messages, in order), the images in
    it, and resources embedded in it (attached like the user's own)."""

    text: str
    images: list[Attachment] = field(default_factory=list)
    resources: list[ResourceData] = field(default_factory=list)


# -- from the SDK's objects --------------------------------------------------------------------


def prompt_info(server: str, prompt: Any) -> PromptInfo:
    arguments = tuple(PromptArgument(a.name, a.description or "", bool(a.required))
                      for a in prompt.arguments or ())
    return PromptInfo(server, prompt.name, prompt.description or prompt.title or "", arguments)


def resource_info(server: str, resource: Any) -> ResourceInfo:
    return ResourceInfo(server, str(resource.uri), resource.name or str(resource.uri),
                        resource.description or resource.title or "", resource.mime_type or "")


def template_info(server: str, template: Any) -> ResourceTemplate | None:
    """A `ResourceTemplate` of the SDK; None when its template cannot be parsed."""
    from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

    try:
        variables = tuple(UriTemplate.parse(template.uri_template).variable_names)
    except InvalidUriTemplate:
        return None
    return ResourceTemplate(server, template.uri_template, template.name or
                            template.uri_template, template.description or template.title or "",
                            template.mime_type or "", variables)


def resource_data(name: str, contents: Any) -> ResourceData:
    """One `TextResourceContents` / `BlobResourceContents`."""
    uri, mime = str(contents.uri), contents.mime_type or ""
    text = getattr(contents, "text", None)
    if isinstance(text, str):
        return ResourceData(uri, name, mime, text=text)
    try:
        data = base64.b64decode(getattr(contents, "blob", "") or "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    return ResourceData(uri, name, mime, data=data)


def prompt_content(result: Any) -> PromptContent:
    """A `GetPromptResult` for the composer. Text of the user's messages goes in as it is;
    when the prompt also speaks as the assistant, each message is labelled with its role so
    nothing is silently turned into the user's words."""
    roles = {str(getattr(m.role, "value", m.role)) for m in result.messages}
    labelled = roles - {"user"} != set()
    out = PromptContent("")
    pieces: list[str] = []
    for message in result.messages:
        role = str(getattr(message.role, "value", message.role))
        block = message.content
        kind = getattr(block, "type", "")
        if kind == "text":
            piece = block.text
        elif kind == "image":
            try:
                out.images.append(Attachment.image(base64.b64decode(block.data),
                                                   f"image from prompt ({block.mime_type})"))
                continue
            except (ValueError, binascii.Error):
                piece = f"[an image ({block.mime_type}) that could not be used]"
        elif kind == "resource":
            resource = block.resource
            out.resources.append(resource_data(_name_from_uri(str(resource.uri)), resource))
            continue
        elif kind == "resource_link":
            piece = f"[resource {block.uri}]"
        else:
            piece = f"[{kind or 'unknown'} content left out]"
        pieces.append(f"{role.capitalize()}: {piece}" if labelled else piece)
    out.text = "\n\n".join(p for p in pieces if p)
    return out


# -- into what the app attaches ----------------------------------------------------------------


def attachable(item: ResourceData) -> Attachment | tuple[bytes, str]:
    """What a resource becomes in a message: an image (`Attachment`), or a document's bytes
    and a file name for the document reader (text, or a PDF/Word blob). Raises ValueError
    with words for the user for other binary data."""
    if item.text is not None:
        return item.text.encode("utf-8"), _file_name(item, _SUFFIXES.get(item.mime, ".txt"))
    data = item.data or b""
    if not data:
        raise ValueError(f"The resource '{item.name}' is empty: there is nothing to attach.")
    if sniff_image(data) is not None:
        return Attachment.image(data, item.name)
    for magic, suffix in _DOCUMENT_BLOBS.items():
        if data.startswith(magic):
            return data, _file_name(item, suffix)
    kind = item.mime or "binary data"
    raise ValueError(f"The resource '{item.name}' is {kind}, which cannot be sent to a model: "
                     "only text, documents (PDF, Word) and PNG/JPEG/GIF/WebP images can be "
                     "attached.")


def _file_name(item: ResourceData, suffix: str) -> str:
    name = item.name or _name_from_uri(item.uri)
    return name if PurePosixPath(name).suffix else name + suffix


def _name_from_uri(uri: str) -> str:
    tail = uri.rstrip("/").rsplit("/", 1)[-1]
    return tail or uri
