"""The status bar, kept quiet: the state, and one line on token use in words that say what
each figure is: the context the conversation fills now (against the model's window) and what
its requests spent together. The last reply's own figures and the explanations are in the
tooltip.

Figures the server did not report are estimated offline and marked "≈"; cost is shown only
when the profile has prices.
"""

from __future__ import annotations

from PySide6.QtWidgets import QSizePolicy, QStatusBar

from desktop_chat.core.chat.usage import (
    ConversationTotals,
    describe_context,
    describe_spend,
    describe_usage,
)
from desktop_chat.core.config.providers import Profile
from desktop_chat.core.model.message import Usage
from desktop_chat.ui.labels import PlainLabel
from desktop_chat.ui.theme import current

SEPARATOR = "  ·  "


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
        self.restyle()
        bar.setSizeGripEnabled(False)
        bar.addWidget(self.stateLabel)
        # The model line gives way when space is short (large fonts, narrow windows): it is
        # cut, the state and the token counts stay whole. Its full text is in the tooltip.
        self.modelLabel.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.insertWidget(0, self.modelLabel, 1)
        # Quiet: the model is in the conversation's header (the picker); this label keeps the
        # text for assistive tools and automation, unseen.
        self.modelLabel.hide()
        bar.addPermanentWidget(self.tokensLabel)

    def restyle(self) -> None:
        muted = current().colors.muted
        for label in (self.modelLabel, self.stateLabel, self.tokensLabel):
            label.setStyleSheet(f"color: {muted};")

    def show_model(self, model: str, profile: str = "") -> None:
        if not (model or profile):
            self.modelLabel.setText("Not connected")  # first run: nothing chosen yet
            return
        self.modelLabel.setText(f"Model: {model or 'none chosen'}"
                                + (f"  ·  {profile}" if profile else ""))
        self.modelLabel.setToolTip(self.modelLabel.text())  # PlainLabel: shown as it is

    def show_usage(self, last: Usage | None, totals: ConversationTotals | None,
                   profile: Profile | None) -> None:
        """`last`: the newest reply's usage (the context in use); `totals`: every request of
        the conversation summed (what was spent)."""
        window = profile.context_window if profile is not None else 0
        context = describe_context(last, window)
        spent = describe_spend(totals) if totals is not None else ""
        text = SEPARATOR.join(p for p in (context, spent) if p)
        self.tokensLabel.setText(text)
        notes = []
        if context:
            notes.append(f"{context}: the last request and its reply, which the next "
                         "message carries again" + ("" if window else
                                                   " (the model's window is not known)"))
        if spent:
            notes.append(f"{spent}: every request of this conversation (all branches) "
                         "added up")
        if reply := describe_usage(last, profile):
            notes.append(reply)
        if "≈" in text:
            notes.append("≈ marks figures estimated on this computer because the server did "
                         "not report them")
        self.tokensLabel.setToolTip("\n".join(notes))
