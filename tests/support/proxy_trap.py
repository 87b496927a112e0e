"""A fake HTTP proxy that only counts connections: proof that a request did (not) use a proxy."""

from __future__ import annotations

import socket
import threading

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                   "all_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")


class ProxyTrap:
    """Accepts and closes every connection on 127.0.0.1, counting them in `accepted`."""

    def __init__(self) -> None:
        self.accepted: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def environment(self) -> dict[str, str]:
        """Proxy variables pointing every scheme at the trap (set them with monkeypatch)."""
        return dict.fromkeys(PROXY_VARIABLES, self.url)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(1)
            conn.close()
