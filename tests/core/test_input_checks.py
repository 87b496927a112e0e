"""The checks of what the user types into a profile or the proxy field (no Qt): None when
fine, else what is wrong and how to fix it."""

from __future__ import annotations

import pytest

from desktop_chat.core.config.providers import (
    base_url_problem,
    env_name_problem,
    format_headers,
    parse_headers,
)
from desktop_chat.core.config.settings import proxy_problem


@pytest.mark.parametrize(("url", "problem"), [
    ("https://api.example/v1", None),
    ("http://127.0.0.1:8080/v1", None),
    ("ftp://host/v1", "must start with http"),
    ("http:///v1", "must start with http"),
    ("http://host:99999/v1", "port"),
    ("http://host:abc/v1", "port"),
])
def test_base_url_problem(url: str, problem: str | None) -> None:
    found = base_url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("url", "ok"), [
    ("http://proxy:3128", True), ("https://proxy.corp:8443", True),
    ("http://proxy", False), ("socks5://proxy:1080", False), ("http://proxy:port", False),
])
def test_proxy_problem(url: str, ok: bool) -> None:
    assert (proxy_problem(url) is None) is ok


def test_env_name_problem() -> None:
    assert env_name_problem("") is None and env_name_problem("MY_KEY_2") is None
    assert env_name_problem("2KEY") and env_name_problem("MY-KEY")


def test_headers_round_trip_and_a_bad_line_is_named() -> None:
    headers = parse_headers("X-Title: desktop-chat\n\nHTTP-Referer:  https://x.example \n")
    assert headers == {"X-Title": "desktop-chat", "HTTP-Referer": "https://x.example"}
    assert parse_headers(format_headers(headers)) == headers
    with pytest.raises(ValueError, match="line 2"):
        parse_headers("A: b\nno colon here")
    with pytest.raises(ValueError, match="line 1"):
        parse_headers("Bad Name: value")
