"""The chat view's own links: every piece of UI chrome in the document is an anchor with a
`dc-` scheme ("dc-copy:3", "dc-regenerate:"). This module is the one place that knows them:
it builds them (`link`), reads them back (`parse`) and tells chrome from content
(`is_chrome`: a selection copy leaves chrome out; model output may never contain it).

On the wire a link is `dc-<name>:` or, for an action about one thing, `dc-<name>:<number>`
(a non-negative decimal, no sign or leading zeros). `parse` accepts exactly what `link`
makes and answers None for anything else; it never raises.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple
from urllib.parse import unquote

PREFIX = "dc-"


class Action(Enum):
    """What a chrome link does; the value is its name on the wire."""

    COPY_CODE = "copy"  # a code block's Copy button: the block's index in the transcript
    TOGGLE = "toggle"  # show or hide a reasoning section: the section's number
    NOTE = "note"  # a reply's footer ("■ Stopped", "⚠ …"): does nothing
    IMAGE = "image"  # a sent image's thumbnail: its resource number; does nothing
    LABEL = "label"  # "You", "Assistant · model", separators, "2 / 3": does nothing
    EARLIER = "earlier"  # "↑ Show N earlier messages"
    COPY_REPLY = "copyreply"  # Copy under a reply: the message's index
    REGENERATE = "regenerate"  # ↻ Regenerate / Retry the last reply
    CONTINUE = "continue"  # → Continue a stopped or interrupted reply
    EDIT = "edit"  # ✎ Edit under a prompt: the message's index
    PREVIOUS = "prev"  # ‹ the previous alternative: the message's id
    NEXT = "next"  # › the next alternative: the message's id
    TOOL = "tool"  # a tool call's row: show or hide its arguments and result (row number)
    SOURCE = "source"  # a passage a reply was given: its number in the transcript
    CONTEXT = "context"  # "What was sent" under a reply: the message's index
    SETTINGS = "settings"  # Open Settings, on an error card
    RESEND = "resend"  # Send again, on the card of a prompt that was not sent
    DETAILS = "details"  # show an error's details: the first block of the details

    @property
    def numbered(self) -> bool:
        """Whether its links carry a number."""
        return self in _NUMBERED


_NUMBERED = frozenset({Action.SOURCE, Action.CONTEXT, Action.DETAILS,
                       Action.COPY_CODE, Action.TOGGLE, Action.IMAGE, Action.COPY_REPLY,
                       Action.EDIT, Action.PREVIOUS, Action.NEXT, Action.TOOL})
_BY_NAME = {action.value: action for action in Action}
_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")  # bounded: int() of a huge string is slow or fails
# Leading characters a URL parser drops (WHATWG: C0 controls and space), so they cannot hide
# a scheme.
_IGNORED_LEAD = "".join(map(chr, range(0x21))) + "\x7f"


class Link(NamedTuple):
    action: Action
    number: int | None  # None for the actions that take none


def link(action: Action, number: int | None = None) -> str:
    """The href of a chrome link. A number is required by exactly the numbered actions."""
    if action.numbered != (number is not None):
        need = "needs a number" if action.numbered else "takes no number"
        raise ValueError(f"{action.name} {need}")
    if number is not None and number < 0:
        raise ValueError(f"{action.name}: {number} is negative")
    return f"{PREFIX}{action.value}:{'' if number is None else number}"


def parse(href: str) -> Link | None:
    """The action of a chrome link as `link` makes it; None for anything else: other
    schemes, unknown names, a missing, extra or malformed number."""
    if not href.startswith(PREFIX):
        return None
    name, colon, arg = href[len(PREFIX):].partition(":")
    action = _BY_NAME.get(name)
    if action is None or not colon:
        return None
    if not action.numbered:
        return Link(action, None) if not arg else None
    return Link(action, int(arg)) if _NUMBER.fullmatch(arg) else None


def is_chrome(href: str) -> bool:
    """Whether a href is in the `dc-` scheme, or would be once a URL parser has normalised it
    (Qt lowercases the scheme and decodes %-escapes): case, %-encoding and leading spaces or
    control characters do not hide it. Any of these in model output is never made a link."""
    decoded = unquote(href)
    while decoded != href:  # "%2564" is "%64" is "d"
        href, decoded = decoded, unquote(decoded)
    return decoded.lstrip(_IGNORED_LEAD).lower().startswith(PREFIX)
