"""Formulas in the window: drawn as images in the text colour at the pixel ratio, source while
streaming or when they cannot be drawn, the LaTeX in every copy."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QColor, QFont, QImage, QTextDocument, QTextFormat

from desktop_chat.core.model.message import Message, Role
from desktop_chat.core.render import markdown
from desktop_chat.core.render.actions import PREFIX
from desktop_chat.core.render.markdown import Theme
from desktop_chat.core.render.math import Formula
from desktop_chat.ui.math_images import SCHEME, MathImages
from desktop_chat.ui.transcript import Transcript
from tests.support.openai_server import LoopbackServer, Scenario
from tests.ui.conftest import ChatDriver, wait_until
from tests.ui.test_rendering import _layout

REPLY = (
    "The roots are $x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$ and Euler's \\(e^{i\\pi} + 1 = 0\\)."
    " It costs $5 and $10.\n\n"
    "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$\n\n"
    "\\[\nA = \\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}\n\\]\n\n"
    "Code stays code: `$x$`. Unknown: $\\nosuchmacro{x}$.\n"
)
SOURCES = ["$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$", "\\(e^{i\\pi} + 1 = 0\\)",
           "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$",
           "\\[\nA = \\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}\n\\]"]


def formula_images(doc: QTextDocument) -> list[tuple[str, str, str]]:
    """(name, alt, tooltip) of every formula image, in order."""
    found, block = [], doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isImageFormat() and fmt.toImageFormat().name().startswith(SCHEME):
                image = fmt.toImageFormat()
                found += [(image.name(), image.property(QTextFormat.Property.ImageAltText),
                           image.toolTip())] * it.fragment().length()
            it += 1
        block = block.next()
    return found


def stream(chat: ChatDriver, server: LoopbackServer, text: str) -> None:
    server.push(Scenario(deltas=[text[i : i + 4] for i in range(0, len(text), 4)]))
    chat.send("math please")
    chat.wait_for_reply()
    wait_until(chat.loop, lambda: not chat.window.transcript.math.busy)


def test_a_streamed_reply_shows_formulas_as_images(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    view = chat.window.transcript
    images = formula_images(view.document())
    assert [alt for _name, alt, _tip in images] == SOURCES
    assert all(tip == alt for _name, alt, tip in images)  # the LaTeX on hover, and as alt text
    for name, _alt, _tip in images:  # drawn, not the source picture shown while drawing
        image = view.document().resource(QTextDocument.ResourceType.ImageResource, QUrl(name))
        assert isinstance(image, QImage) and not image.isNull()
    text = chat.transcript_text()
    assert "It costs $5 and $10." in text  # prices are text
    assert "Code stays code: $x$." in text  # a code span
    assert "Unknown: $\\nosuchmacro{x}$." in text  # cannot be drawn: its source


def test_copying_the_reply_keeps_latex_and_pastes_pictures(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    chat.copy_last_reply()
    assert chat.clipboard() == REPLY and chat.clipboard("text/markdown") == REPLY
    html = chat.clipboard("text/html")
    alts = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" width="\d+" '
                      r'height="\d+" alt="([^"]*)"', html)
    assert len(alts) == 4 and alts[1] == "\\(e^{i\\pi} + 1 = 0\\)"
    assert "<code>$\\nosuchmacro{x}$</code>" in html
    pasted = QTextDocument()  # a rich editor receiving the HTML shows the pictures
    pasted.setHtml(html)
    pasted.setTextWidth(600)
    assert pasted.toPlainText().count("\ufffc") == 4 and pasted.size().height() > 100


def test_selection_copy_gives_latex(chat: ChatDriver, server) -> None:
    stream(chat, server, REPLY)
    view = chat.window.transcript
    view.selectAll()
    view.copy()
    plain, html = chat.clipboard(), chat.clipboard("text/html")
    for source in SOURCES:
        assert source in plain
    assert "\ufffc" not in plain
    assert html.count("data:image/png;base64,") == 4 and SCHEME not in html
    assert PREFIX not in html


def test_selecting_one_formula_copies_its_latex(chat: ChatDriver, server) -> None:
    stream(chat, server, "Before $\\alpha^2$ after.")
    view = chat.window.transcript
    cursor = view.document().find("\ufffc")
    view.setTextCursor(cursor)
    view.copy()
    assert chat.clipboard() == "$\\alpha^2$"


def test_an_unfinished_formula_shows_as_source_until_closed(qapp) -> None:
    view = Transcript(Theme(dark=False))
    view.begin_reply("m", 0)
    view.append_reply_text("Then \\(x^")
    assert "Then \\(x^" in view.toPlainText() and not formula_images(view.document())
    view.append_reply_text("2\\) done.")
    assert [alt for _n, alt, _t in formula_images(view.document())] == ["\\(x^2\\)"]
    view.end_reply(Message.of(Role.ASSISTANT, "Then \\(x^2\\) done."), 0)
    assert "Then \ufffc done." in view.toPlainText()


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_a_streamed_reply_with_math_is_laid_out_like_a_one_shot_render(qapp, step: int) -> None:
    view = Transcript(Theme(dark=False))
    view.begin_reply("m", 0)
    for i in range(0, len(REPLY), step):
        view.append_reply_text(REPLY[i : i + step])
    view.end_reply(Message.of(Role.ASSISTANT, REPLY), 0)
    one_shot = QTextDocument()
    one_shot.setDefaultStyleSheet(view.document().defaultStyleSheet())  # the view's rhythm
    one_shot.setHtml(markdown.render(REPLY, view.theme, math=view.math.html).html)
    assert _layout(view.document())[1:-1] == _layout(one_shot)
    assert formula_images(view.document()) == formula_images(one_shot)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_formulas_take_the_text_colour_and_the_pixel_ratio(qapp, dark: bool,
                                                           ratio: float) -> None:
    theme = Theme(dark=dark)
    doc = QTextDocument()
    font = QFont()
    font.setPixelSize(16)
    math = MathImages(doc, lambda: (font, theme.colors.text, ratio))
    tag = math.html(Formula("\\sum_{n=1}^{\\infty} n^{-2}", True, "$$", "$$"))
    name = re.search(r'src="([^"]+)"', tag).group(1)
    image = doc.resource(QTextDocument.ResourceType.ImageResource, QUrl(name))
    assert image.devicePixelRatio() == ratio and image.height() > 30 * ratio
    inked = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())
             if image.pixelColor(x, y).alpha() == 255]
    assert inked and {c.name() for c in inked} == {QColor(theme.colors.text).name()}


def test_copied_formulas_are_in_dark_ink_even_from_a_dark_theme(qapp) -> None:
    """Pasted text takes the page's colour and pages are light: light ink would vanish."""
    import base64

    doc = QTextDocument()
    math = MathImages(doc, lambda: (QFont(), Theme(dark=True).colors.text, 1.0))
    formula = Formula("x^2", False, "$", "$")
    math.html(formula)
    tag = math.clipboard_html(formula)
    data = re.search(r'src="data:image/png;base64,([^"]+)"', tag).group(1)
    image = QImage.fromData(base64.b64decode(data))
    assert image.width() >= 2 * int(re.search(r'width="(\d+)"', tag).group(1))  # 2x at least
    inked = {image.pixelColor(x, y).name() for x in range(image.width())
             for y in range(image.height()) if image.pixelColor(x, y).alpha() == 255}
    assert inked == {QColor(Theme(dark=False).colors.text).name()}
    assert 'alt="$x^2$"' in tag
