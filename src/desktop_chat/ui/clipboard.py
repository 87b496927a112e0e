"""Putting text on the clipboard in the flavours other apps paste best."""

from __future__ import annotations

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication


def put_on_clipboard(text: str, html: str | None) -> None:
    """`text` as text/plain and text/markdown (it is markdown source), `html` rendered."""
    mime = QMimeData()
    mime.setText(text)
    mime.setData("text/markdown", text.encode("utf-8"))
    if html is not None:
        mime.setHtml(html)
    QGuiApplication.clipboard().setMimeData(mime)
