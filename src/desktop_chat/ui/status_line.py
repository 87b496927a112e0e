"""The status bar: model, state, and token use (last reply, conversation, estimated cost).

Figures the server did not report are estimated offline and marked "≈"; cost is shown only
when the profile has prices.
"""

from __future__ import annotations

from PySide6.QtWidgets import QSizePolicy, QStatusBar

from desktop_chat.core.chat.usage import ConversationTotals, describe_usage
from desktop_chat.core.config.providers import Profile
from desktop_chat.core.model.message import Usage
from desktop_chat.ui.labels import PlainLabel


class StatusLine:
    """Owns the labels in the window's status bar. Plain text: the model name is the
    server's (its model list) and a notice may quote it."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.modelLabel = PlainLabel()
        self.stateLabel = PlainLabel("Ready")
        self.tokensLabel = PlainLabel()
        self.tokensLabel.setObjectName("tokensLabel")
        for label, name in ((self.modelLabel, "Model"), (self.stateLabel, "State"),
                            (self.tokensLabel, "Tokens")):
            label.setAccessibleName(name)
        bar.addWidget(self.stateLabel)
        # The model line gives way when space is short (large fonts, narrow windows): it is
        # cut, the state and the token counts stay whole. Its full text is in the tooltip.
        self.modelLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.insertWidget(0, self.modelLabel, 1)
        bar.addPermanentWidget(self.tokensLabel)

    def show_model(self, model: str, profile: str = "") -> None:
        if not (model or profile):
            self.modelLabel.setText("Not connected")  # first run: nothing chosen yet
            return
        self.modelLabel.setText(f"Model: {model or 'none chosen'}"
                                + (f"  ·  {profile}" if profile else ""))
        self.modelLabel.setToolTip(self.modelLabel.text())  # PlainLabel: shown as it is

    def show_usage(self, last: Usage | None, totals: ConversationTotals | None,
                   profile: Profile | None) -> None:
        parts = [describe_usage(last, profile)]
        if totals is not None and (whole := totals.describe()):
            parts.append(f"Conversation: {whole}")
        text = "  ·  ".join(p for p in parts if p)
        self.tokensLabel.setText(text)
        self.tokensLabel.setToolTip(
            "≈ marks figures estimated on this computer because the server did not report "
            "them" if "≈" in text else "")
