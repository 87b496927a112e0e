"""Images on user messages: checking them, the content parts a request carries (seen by the
loopback server), keeping them in the history, and exporting/importing them."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from desktop_chat.core.chat.session import ChatSession
from desktop_chat.core.history.store import Store
from desktop_chat.core.history.transfer import (
    TransferError,
    export_json,
    export_markdown,
    import_file,
    import_json,
)
from desktop_chat.core.llm.client import ChatClient, Endpoint
from desktop_chat.core.model.message import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    Conversation,
    Message,
    ReplyState,
    Role,
    sniff_image,
)
from tests.conftest import TEST_KEY
from tests.support.history import add
from tests.support.openai_server import LoopbackServer, Scenario


def png(width: int = 2, height: int = 1) -> bytes:
    """A real, decodable RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200))
CAT = Attachment("image/png", png(), "cat.png")
DOG = Attachment("image/jpeg", JPEG, "dog.jpg")


# -- checking an image -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [(png(), "image/png"), (JPEG, "image/jpeg"), (b"GIF89a" + bytes(20), "image/gif"),
     (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), "image/webp"), (b"BM" + bytes(60), None),
     (b"%PDF-1.7", None), (b"", None)],
    ids=["png", "jpeg", "gif", "webp", "bmp", "pdf", "empty"],
)
def test_the_type_is_read_from_the_bytes(data: bytes, mime: str | None) -> None:
    assert sniff_image(data) == mime


def test_image_takes_its_type_from_the_bytes_not_the_name() -> None:
    attachment = Attachment.image(JPEG, "looks like.png")
    assert (attachment.mime, attachment.name, attachment.data) == ("image/jpeg",
                                                                   "looks like.png", JPEG)


def test_something_that_is_not_an_image_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match=r"'notes.pdf' is not a PNG, JPEG, GIF or WebP image"):
        Attachment.image(b"%PDF-1.7 ...", "notes.pdf")


def test_an_image_over_the_limit_is_refused_with_its_size() -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(MAX_ATTACHMENT_BYTES)
    with pytest.raises(ValueError) as caught:
        Attachment.image(big, "huge.png")
    assert str(caught.value).startswith("'huge.png' is 20.0 MB; images up to 20 MB can be sent.")
    assert "Make it smaller" in str(caught.value)
    exactly = b"\x89PNG\r\n\x1a\n" + bytes(MAX_ATTACHMENT_BYTES - 8)
    assert Attachment.image(exactly).size == MAX_ATTACHMENT_BYTES  # the limit itself is fine


def test_data_url_is_the_base64_of_the_bytes() -> None:
    prefix, encoded = CAT.data_url.split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == CAT.data


# -- the request -------------------------------------------------------------------------------


def test_a_message_with_images_becomes_content_parts() -> None:
    conversation = Conversation([
        Message.of(Role.USER, "What is in these?", attachments=[CAT, DOG]),
        Message.of(Role.ASSISTANT, "A cat and a dog."),
        Message.of(Role.USER, "", attachments=[CAT]),
        Message.of(Role.USER, "plain"),
    ])
    assert conversation.request_messages("Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": CAT.data_url}},
            {"type": "image_url", "image_url": {"url": DOG.data_url}},
        ]},
        {"role": "assistant", "content": "A cat and a dog."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": CAT.data_url}}]},
        {"role": "user", "content": "plain"},
    ]


def session_on(server: LoopbackServer, store: Store | None = None) -> ChatSession:
    client = ChatClient(Endpoint(server.base_url, TEST_KEY, 2.0, 2.0))
    return ChatSession(client, "vision-model", store=store)


async def turn(session: ChatSession, prompt: str, attachments: list[Attachment]) -> None:
    try:
        await session.run(session.start(prompt, attachments))
    finally:
        await session.client.aclose()


def test_the_server_receives_the_image_parts_and_the_history_keeps_them(
        server: LoopbackServer, store: Store) -> None:
    server.push(Scenario(deltas=["A red pixel."]))
    session = session_on(server, store)
    asyncio.run(turn(session, "Describe this", [CAT]))
    body = server.requests[0].body
    assert body is not None and body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": CAT.data_url}}]}]
    assert session.messages[0].attachments == [CAT]
    assert session.conversation_id is not None
    path = store.active_path(session.conversation_id)
    assert path[0].attachments == [CAT] and path[1].attachments == []


def test_an_image_only_prompt_gets_a_title_from_the_image(server: LoopbackServer) -> None:
    server.push(Scenario(deltas=["ok"]))
    session = session_on(server)
    asyncio.run(turn(session, "", [CAT]))
    assert session.conversation.title == "cat.png"


def test_a_too_large_image_changes_nothing(server: LoopbackServer, store: Store) -> None:
    session = session_on(server, store)
    huge = Attachment("image/png", bytes(MAX_ATTACHMENT_BYTES + 1), "huge.png")
    with pytest.raises(ValueError, match="images up to 20 MB can be sent"):
        session.start("look", [huge])
    with pytest.raises(ValueError, match="is not a PNG, JPEG, GIF or WebP"):
        session.start("look", [Attachment("image/bmp", b"BM", "old.bmp")])
    assert session.messages == [] and session.conversation_id is None
    assert store.list_conversations() == []


def test_a_failed_request_hands_the_images_back(server: LoopbackServer, store: Store) -> None:
    server.push(Scenario(status=500))
    session = session_on(server, store)
    reply = session.start("look", [CAT, DOG])

    async def go() -> None:
        try:
            await session.run(reply)
        finally:
            await session.client.aclose()

    asyncio.run(go())
    assert reply.reply.state is ReplyState.FAILED
    assert reply.prompt.attachments == [CAT, DOG]  # for the composer, with the text
    assert session.messages == [] and store.list_conversations(limit=None) == []


def test_editing_keeps_the_images_unless_replaced(server: LoopbackServer, store: Store) -> None:
    server.push(Scenario(deltas=["one"]), Scenario(deltas=["two"]), Scenario(deltas=["three"]))
    session = session_on(server, store)

    async def go() -> None:
        try:
            await session.run(session.start("first", [CAT]))
            await session.run(session.start_edit(0, "first, edited"))
            await session.run(session.start_edit(0, "now the dog", [DOG]))
        finally:
            await session.client.aclose()

    asyncio.run(go())
    sent = [r.body["messages"][0]["content"] for r in server.requests if r.body]
    assert [p["image_url"]["url"] for p in sent[1] if p["type"] == "image_url"] == [CAT.data_url]
    assert [p["image_url"]["url"] for p in sent[2] if p["type"] == "image_url"] == [DOG.data_url]
    assert session.conversation_id is not None
    prompts = [m for m in store.all_messages(session.conversation_id) if m.role is Role.USER]
    assert [m.attachments for m in prompts] == [[CAT], [CAT], [DOG]]


# -- the history -------------------------------------------------------------------------------


def test_attachments_keep_their_order_and_go_with_their_message(store: Store) -> None:
    c = store.create_conversation("Pictures")
    first = add(store, c, None, Role.USER, "two images", attachments=[DOG, CAT])
    second = add(store, c, first, Role.USER, "none")
    message = store.message(first)
    assert message is not None and message.attachments == [DOG, CAT]
    assert [m.attachments for m in store.active_path(c)] == [[DOG, CAT], []]
    store.delete_message(first)  # removes the branch below it and every image with it
    count = store._conn.execute("SELECT count(*) FROM attachments").fetchone()[0]
    assert count == 0 and store.message(second) is None


def test_a_damaged_attachment_row_is_skipped_not_the_message(store: Store) -> None:
    c = store.create_conversation("Pictures")
    m = add(store, c, None, Role.USER, "look", attachments=[CAT, DOG])
    store._conn.execute("UPDATE attachments SET data = 'text, not bytes' WHERE position = 1")
    [message] = store.active_path(c)
    assert (message.content, message.attachments) == ("look", [CAT])
    assert store.skipped_rows == 1 and m == message.id


# -- export and import -------------------------------------------------------------------------


def test_json_export_carries_images_and_imports_them_back(store: Store, fresh: Store,
                                                          tmp_path: Path) -> None:
    c = store.create_conversation("Pictures")
    add(store, c, None, Role.USER, "look", attachments=[CAT, DOG])
    data = export_json(store)
    [message] = data["conversations"][0]["messages"]
    assert message["attachments"] == [
        {"name": "cat.png", "mime": "image/png", "data": base64.b64encode(CAT.data).decode()},
        {"name": "dog.jpg", "mime": "image/jpeg", "data": base64.b64encode(JPEG).decode()},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data), "utf-8")
    assert import_file(fresh, path).messages == 1
    [imported] = fresh.active_path(fresh.list_conversations()[0].id)
    assert imported.attachments == [CAT, DOG]


def test_markdown_names_each_image(store: Store) -> None:
    c = store.create_conversation("Pictures")
    add(store, c, None, Role.USER, "look", attachments=[CAT, Attachment("image/jpeg",
                                                                               JPEG)])
    text = export_markdown(store, c)
    assert "look\n\n*Image attached: cat.png (PNG, 1 KB)*\n\n*Image attached: (JPEG, 1 KB)*" in text
    assert base64.b64encode(CAT.data).decode() not in text


@pytest.mark.parametrize(
    "attachments",
    [{"not": "a list"}, [{"name": "x.png"}], [{"data": "!!not base64!!"}],
     [{"data": base64.b64encode(b"%PDF-1.7").decode()}], [{"data": "", "name": 3}]],
    ids=["not-list", "no-data", "bad-base64", "not-an-image", "name-not-text"],
)
def test_a_bad_image_in_an_export_fails_the_whole_import(store: Store,
                                                         attachments: object) -> None:
    good = {"uid": "good", "messages": [{"id": 1, "role": "user", "content": "fine"}]}
    bad = {"uid": "bad", "messages": [{"id": 1, "role": "user", "content": "x",
                                       "attachments": attachments}]}
    data = {"format": "desktop-chat-history", "version": 1, "conversations": [good, bad]}
    with pytest.raises(TransferError, match=r"Conversation 2, message 1"):
        import_json(store, data)
    assert store.list_conversations(limit=None) == []
