"""The window's design tokens: one object holds colours, radii, spacing and type sizes.

Pure data, no Qt: the markdown renderer writes these colours into the HTML it makes, and the UI
(`ui/theme.py`, `ui/icons.py`) turns them into palettes, style sheets and tinted icons. Widgets
never spell a colour literal themselves; they ask the theme.

Scales (design.md): spacing 4/8/12/16/24/32 px at 1x; type relative to the platform's default
size: body +1 pt, small = body - 2 pt, code = body - 1 pt.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Colors:
    """Colours as `#rrggbb` strings, one set per scheme."""

    window: str          # the conversation's background
    sidebar: str         # the conversation list's background
    text: str
    muted: str           # secondary text: model names, timestamps, hints
    faint: str           # hairlines, rules, borders of inputs
    bubble: str          # the user's message bubble
    hover: str           # a row or icon button under the pointer
    selected: str        # the open conversation in the list
    accent: str          # focus rings, links, the primary button
    on_accent: str       # text and icons on the accent colour
    send: str            # the round Send button (high contrast, like the peers')
    on_send: str
    code_background: str
    code_header: str
    inline_code: str
    quote_bar: str
    danger: str          # error text and icons
    danger_surface: str  # error card background
    danger_border: str
    notice: str          # a warning's text
    notice_surface: str
    notice_border: str
    success: str
    match: str           # a search hit's highlight
    pygments_style: str


LIGHT = Colors(
    window="#ffffff", sidebar="#f7f7f8", text="#1f2328", muted="#6a737d", faint="#e3e5e8",
    bubble="#f0f1f3", hover="#ececef", selected="#e4e6ea", accent="#2563eb", on_accent="#ffffff",
    send="#1f2328", on_send="#ffffff", code_background="#f6f8fa", code_header="#eceff2",
    inline_code="#eff1f3", quote_bar="#d0d7de", danger="#b3261e", danger_surface="#fdecea",
    danger_border="#f5c2bd", notice="#5d4300", notice_surface="#fff8e1",
    notice_border="#f0d98c", success="#1a7f37", match="#fff3a3", pygments_style="friendly",
)

DARK = Colors(
    window="#1e1f22", sidebar="#17181a", text="#e8eaed", muted="#9aa0a6", faint="#3a3c41",
    bubble="#2f3136", hover="#2a2c30", selected="#34363b", accent="#8ab4f8", on_accent="#10213f",
    send="#e8eaed", on_send="#1e1f22", code_background="#26272b", code_header="#2f3035",
    inline_code="#303236", quote_bar="#4a4d53", danger="#f28b82", danger_surface="#3b1f1d",
    danger_border="#6e2b26", notice="#f3e2a9", notice_surface="#3a3220",
    notice_border="#6b5a2a", success="#7ee2a8", match="#5c4d00", pygments_style="monokai",
)


@dataclass(frozen=True, slots=True)
class Spacing:
    xs: int = 4
    s: int = 8
    m: int = 12
    l: int = 16  # noqa: E741 - the scale's own name
    xl: int = 24
    xxl: int = 32


@dataclass(frozen=True, slots=True)
class Radii:
    bubble: int = 16
    composer: int = 18
    card: int = 12
    chip: int = 10
    button: int = 8


@dataclass(frozen=True, slots=True)
class Type:
    """Point-size offsets from the platform's default font size."""

    body: int = 1
    small: int = -1   # body - 2
    code: int = 0     # body - 1
    heading: tuple[int, ...] = (7, 5, 3, 2, 1, 1)  # h1..h6, body-relative steps kept modest
    line_height: int = 150  # percent
    monospace: tuple[str, ...] = ("JetBrains Mono", "Cascadia Code", "SF Mono", "Menlo",
                                  "Consolas", "DejaVu Sans Mono", "monospace")


@dataclass(frozen=True, slots=True)
class Theme:
    """Everything the window's look is made of, for one colour scheme."""

    dark: bool = False
    space: Spacing = field(default_factory=Spacing)
    radius: Radii = field(default_factory=Radii)
    type: Type = field(default_factory=Type)
    column_width: int = 760      # the reading column, px at 1x
    bubble_share: float = 0.75   # a user bubble's widest, as a share of the column
    paragraph_gap: int = 10      # px between paragraphs (~0.7 em of the body size)
    code_hang: int = 32          # px a wrapped code line goes on indented by (never column 0)
    action_row: int = 30         # px of the row of icon buttons under a message

    @property
    def colors(self) -> Colors:
        return DARK if self.dark else LIGHT

    # Short names the renderer has always used.
    @property
    def muted(self) -> str:
        return self.colors.muted

    @property
    def code_background(self) -> str:
        return self.colors.code_background

    @property
    def pygments_style(self) -> str:
        return self.colors.pygments_style
