"""What the settings pages share about their fields: `Invalid`, a value the user must fix
(the dialog shows the first one and puts the cursor in the field, so a bad value never
reaches the settings file), and numbers that survive opening and closing the dialog.

The checks themselves are pure and live next to what they check (`core/config`)."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QWidget


class Invalid(Exception):
    """A value the user must fix; `widget` is where the cursor goes."""

    def __init__(self, message: str, widget: QWidget) -> None:
        super().__init__(message)
        self.message = message
        self.widget = widget


def kept_value(box: QDoubleSpinBox, original: float) -> float:
    """The stored value while the box still shows it (the box rounds to its decimals), so
    opening and closing the dialog never changes a number."""
    return original if abs(box.value() - original) < 0.5 * 10 ** -box.decimals() else box.value()
