"""Screen readers get formulas as their LaTeX: the transcript's accessible text (Qt's
QAccessibleTextInterface, as AT-SPI/UIA/NSAccessibility bridges read it) carries each formula's
source where Qt alone would give U+FFFC, with offsets mapped to and from the document."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtGui import QAccessible, QTextCursor

from desktop_chat.core.model.message import Message, Role
from desktop_chat.core.render.markdown import Theme
from desktop_chat.ui import transcript_accessible
from desktop_chat.ui.transcript import Transcript
from desktop_chat.ui.transcript_accessible import AccessibleText
from tests.ui.conftest import ChatDriver
from tests.ui.test_math_view import REPLY, SOURCES, formula_images, stream

MIXED = ("Inline $a^2 + b^2 = c^2$ then a display:\n\n"
         "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$\n\nDone here.")


def shown(text: str) -> Transcript:
    transcript_accessible.install()  # as app.py does for the window
    view = Transcript(Theme(dark=False))
    view.resize(700, 500)
    view.show()
    view.begin_reply("m", 0)
    view.append_reply_text(text)
    view.end_reply(Message.of(Role.ASSISTANT, text), 0)
    return view


def accessible_text(view: Transcript) -> str:
    iface = QAccessible.queryAccessibleInterface(view)
    text = iface.textInterface()
    return text.text(0, text.characterCount())


def test_the_transcript_keeps_its_name_role_and_state(qapp) -> None:
    view = shown("Hello.")
    iface = QAccessible.queryAccessibleInterface(view)
    assert iface.text(QAccessible.Text.Name) == "Conversation"
    assert iface.role() == QAccessible.Role.StaticText
    state = iface.state()
    assert state.readOnly and state.multiLine and state.selectableText and state.focusable
    assert iface.childCount() >= 1  # viewport and scroll bars, as before
    # Qt (C++) gets our text interface through interface_cast: the same object comes back
    assert iface.textInterface() is iface.text_part


def test_inline_and_display_formulas_are_read_as_latex(qapp) -> None:
    view = shown(MIXED)
    assert len(formula_images(view.document())) == 2  # really drawn as images
    assert "\ufffc" in view.toPlainText()  # what Qt alone would read out
    text = accessible_text(view)
    assert "\ufffc" not in text
    assert "Inline $a^2 + b^2 = c^2$ then a display:" in text
    assert "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$" in text
    assert "Done here." in text
    iface = QAccessible.queryAccessibleInterface(view)
    assert iface.text(QAccessible.Text.Value) == text


def test_offsets_map_to_the_document_around_formulas(qapp) -> None:
    view = shown(MIXED)
    iface = QAccessible.queryAccessibleInterface(view)
    text_iface = iface.textInterface()
    text = accessible_text(view)
    doc_text = view.document().toRawText()
    done = doc_text.index("Done here.")
    # the caret after the display formula is reported where "Done" is in the accessible text
    cursor = view.textCursor()
    cursor.setPosition(done)
    view.setTextCursor(cursor)
    offset = text_iface.cursorPosition()
    assert text[offset:offset + len("Done here.")] == "Done here."
    # and setting it there puts the caret back at the document position
    text_iface.setCursorPosition(text.index("then"))
    assert view.textCursor().position() == doc_text.index("then")
    # any offset inside a formula's LaTeX is the formula's character
    formula_at = doc_text.index("\ufffc")
    inside = text.index("b^2")
    text_iface.setCursorPosition(inside)
    assert view.textCursor().position() == formula_at
    # a selection set in accessible offsets selects the words in the document
    start = text.index("then a display")
    text_iface.setSelection(0, start, start + len("then a display"))
    assert view.textCursor().selectedText() == "then a display"
    text_iface.removeSelection(0)
    assert not view.textCursor().hasSelection()
    # boxes and hit tests agree: the point of "Done" is at its offset
    rect = text_iface.characterRect(offset)
    assert rect.height() > 0
    assert text_iface.offsetAtPoint(rect.center() + QPoint(1, 0)) == offset


def test_a_reply_without_formulas_keeps_qt_s_text_and_offsets(qapp) -> None:
    view = shown("First paragraph.\n\nSecond one, with **bold** and `code`.")
    text_iface = QAccessible.queryAccessibleInterface(view).textInterface()
    plain = view.document().toRawText().replace("\u2029", "\n")
    assert accessible_text(view) == plain
    assert text_iface.characterCount() == view.document().characterCount() - 1
    for position in (0, 5, plain.index("Second"), plain.index("bold"), len(plain)):
        text_iface.setCursorPosition(position)
        assert view.textCursor().position() == position
        assert text_iface.cursorPosition() == position
        cursor = QTextCursor(view.document())
        cursor.setPosition(position)
        expected = view.cursorRect(cursor)
        assert text_iface.characterRect(position).topLeft() == \
            view.viewport().mapToGlobal(expected.topLeft())
    assert text_iface.text(plain.index("bold"), plain.index("bold") + 4) == "bold"


def test_the_mapping_round_trips(qapp) -> None:
    view = shown(MIXED)
    mapped = AccessibleText(view.document())
    doc_text = view.document().toRawText()
    for position in range(len(doc_text) + 1):
        offset = mapped.offset(position)
        assert mapped.position(offset) == position
        if position < len(doc_text) and doc_text[position] not in "\ufffc":
            assert mapped.text[offset] == doc_text[position].replace("\u2029", "\n")


def test_a_streamed_reply_is_read_with_its_latex(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    view = chat.window.transcript
    text = accessible_text(view)
    assert "\ufffc" not in text
    for source in SOURCES:
        assert source in text
    assert "It costs $5 and $10." in text  # currency stays text
    assert "math please" in text  # the prompt too


def test_the_text_follows_a_reply_as_it_streams(qapp) -> None:
    view = Transcript(Theme(dark=False))
    view.begin_reply("m", 0)
    view.append_reply_text("So $x^")
    text_iface = QAccessible.queryAccessibleInterface(view).textInterface()
    assert "So $x^" in text_iface.text(0, text_iface.characterCount())
    view.append_reply_text("2$ and more")
    view.end_reply(Message.of(Role.ASSISTANT, "So $x^2$ and more"), 0)
    text = text_iface.text(0, text_iface.characterCount())
    assert "So $x^2$ and more" in text and "\ufffc" not in text
    assert len(formula_images(view.document())) == 1
