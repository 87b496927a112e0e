"""The model box: the server's models, searchable by any part of the name; free text allowed.

Servers without a model list (or that are unreachable right now) still work: the user types
a name. The choice is reported once it is made (picked from the list, or Enter / focus
leaving the box), not on every keystroke.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSignalBlocker, QStringListModel, Qt, Signal
from PySide6.QtGui import QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

from desktop_chat.ui import icons
from desktop_chat.ui.theme import current, point_size


class ModelPicker(QComboBox):
    model_chosen = Signal(str)

    def __init__(self, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.setAccessibleName("Model")
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMinimumContentsLength(10)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._names = QStringListModel(self)
        completer = QCompleter(self._names, self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)  # "70b" finds "llama-3.1-70b"
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        completer.setMaxVisibleItems(15)
        self.setCompleter(completer)
        self._chosen = model
        self.set_models([], model)
        self.textActivated.connect(self._commit)
        self.lineEdit().editingFinished.connect(lambda: self._commit(self.currentText()))
        self.lineEdit().setPlaceholderText("Pick a model")
        self.restyle()

    def restyle(self) -> None:
        """Flat: the model's name in the header, a soft background under the pointer."""
        theme = current()
        c = theme.colors
        self.setStyleSheet(
            f"QComboBox#modelPicker {{ border: 1px solid transparent;"
            f" border-radius: {theme.radius.button}px; padding: 3px 6px; background: transparent;"
            f" color: {c.text}; }}"
            f" QComboBox#modelPicker:hover, QComboBox#modelPicker:focus {{ background: {c.hover};"
            f" }}"
            " QComboBox#modelPicker::drop-down { border: none; width: 18px; }"
            f" QComboBox#modelPicker QLineEdit {{ background: transparent; border: none;"
            f" color: {c.text}; }}")
        font = self.font()
        font.setPointSizeF(point_size(theme.type.body))
        font.setWeight(QFont.Weight.DemiBold)
        self.setFont(font)

    def paintEvent(self, event: QPaintEvent) -> None:
        """The flat box keeps a caret, so that it still reads as a drop-down."""
        super().paintEvent(event)
        size = 14
        painter = QPainter(self)
        icons.icon("collapse", current().colors.muted).paint(
            painter, QRect(self.width() - size - 4, (self.height() - size) // 2, size, size))
        painter.end()

    @property
    def chosen(self) -> str:
        return self._chosen

    def set_models(self, models: list[str], current: str | None = None) -> None:
        """Refill the list (e.g. after the server answered /v1/models), keeping the choice."""
        current = self._chosen if current is None else current
        names = sorted(set(models), key=str.lower)
        with QSignalBlocker(self):
            self.clear()
            self.addItems(names)
            if current and current not in names:
                self.insertItem(0, current)
            self.setCurrentText(current)
        self._names.setStringList(names)
        self._chosen = current
        count = len(names)
        self.setToolTip(
            f"Model for the next message: {count} offered by the server; type to search, "
            "or type any name" if count else "Model for the next message (type any name)"
        )

    def show_choice(self, model: str) -> None:
        """Show `model` as chosen without reporting it (it was chosen elsewhere)."""
        with QSignalBlocker(self):
            self.setCurrentText(model)
        self._chosen = model

    def commit(self) -> None:
        """Take what is in the box now (before a send: the user may not have left it)."""
        self._commit(self.currentText())

    def _commit(self, text: str) -> None:
        text = text.strip()
        if text and text != self._chosen:
            self._chosen = text
            self.model_chosen.emit(text)
