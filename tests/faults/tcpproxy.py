"""A TCP proxy that injects network faults between a client and a real server, for tests."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_port`; faults are switched on and off by calls.

    - `cut()`: reset every open connection and refuse new ones until `restore()`.
    - `latency_s`: delay added to every chunk, both ways (a slow link or a slow server).
    - `cut_when(predicate)`: reset the connection carrying the first server→client chunk
      for which predicate(chunk) is true, before that chunk is delivered (a lost PUBACK).
      `upstream=True` watches client→server chunks instead; `partial=True` first delivers
      the first half of the chunk (a packet torn in the middle, e.g. half a PUBLISH).
    """

    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.latency_s = 0.0
        self.connections_made = 0
        self.cuts = 0
        self._refusing = False
        self._trigger: Callable[[bytes], bool] | None = None
        self._upstream = False
        self._partial = False
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Reset all connections and refuse new ones."""
        self._refusing = True
        self._reset_all()

    def restore(self) -> None:
        self._refusing = False

    def flap(self) -> None:
        """Reset all connections once, accepting new ones straight away."""
        self._reset_all()

    def cut_when(
        self,
        predicate: Callable[[bytes], bool] | None,
        *,
        upstream: bool = False,
        partial: bool = False,
    ) -> None:
        self._upstream = upstream
        self._partial = partial
        self._trigger = predicate

    @property
    def armed(self) -> bool:
        """A cut_when trigger is waiting for its chunk."""
        return self._trigger is not None

    def close(self) -> None:
        self._closed = True
        self._refusing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._reset_all()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            self._reset(*pair)

    def _reset(self, *socks: socket.socket) -> None:
        self.cuts += 1
        for sock in socks:
            with contextlib.suppress(OSError):
                # SO_LINGER 0: close sends RST, as a dropped mobile link looks to the peer.
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            # Closed even when setsockopt failed (a socket the peer already reset), else the
            # socket leaks and its ResourceWarning fails an unrelated test.
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                self._reset(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                self._reset(client)
                continue
            server.settimeout(None)
            self.connections_made += 1
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError
                    if self.latency_s:
                        time.sleep(self.latency_s)
                    trigger = self._trigger
                    watched = client if self._upstream else server
                    if sock is watched and trigger is not None and trigger(chunk):
                        self._trigger = None
                        if self._partial and len(chunk) > 1:
                            peers[sock].sendall(chunk[: len(chunk) // 2])
                        raise ConnectionError
                    peers[sock].sendall(chunk)
        except (OSError, ConnectionError, ValueError):
            with self._lock:
                if (client, server) in self._pairs:
                    self._pairs.remove((client, server))
            self._reset(client, server)


def has_mqtt_packet(chunk: bytes, packet_type: int) -> bool:
    """A rough check that `chunk` starts with an MQTT packet of `packet_type` (e.g. 4 = PUBACK)."""
    return bool(chunk) and chunk[0] >> 4 == packet_type
