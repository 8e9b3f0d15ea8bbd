"""A text/event-stream reader for the live stream tests: one HTTP/1.1 connection over a raw
socket, events parsed as the WHATWG EventSource rules say (event, id, data, retry fields;
comment lines kept apart)."""
from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


@dataclass
class Stream:
    status: int
    headers: dict[str, str]
    sock: socket.socket
    buffer: bytes = b""
    ended: bool = False
    comments: list[str] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        """The rest of the answer, read to its end (for answers that are not a stream)."""
        self._read_until(lambda: False, time.monotonic() + 10)
        return self.buffer

    def _read_until(self, done, deadline: float) -> None:
        while not done() and not self.ended:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return
            chunk = self.sock.recv(65536)
            if not chunk:
                self.ended = True
                return
            self.buffer += chunk

    def _line(self, deadline: float) -> str | None:
        self._read_until(lambda: b"\n" in self.buffer, deadline)
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().rstrip("\r")

    def next_event(self, timeout: float) -> Event | None:
        """The next event within `timeout` seconds; None when none came (or the stream ended:
        see `ended`)."""
        deadline = time.monotonic() + timeout
        event, seen = Event(), False
        while True:
            line = self._line(deadline)
            if line is None:
                return None
            if line == "":
                if seen:
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            seen = True
            if name == "event":
                event.event = value
            elif name == "data":
                event.data = value if not event.data else event.data + "\n" + value
            elif name == "id":
                event.id = value
            elif name == "retry" and value.isdigit():
                event.retry = int(value)

    def wait_for_end(self, timeout: float) -> bool:
        """Reads until the server ends the stream; True if it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.ended and time.monotonic() < deadline:
            self._read_until(lambda: False, deadline)
        return self.ended

    def close(self):
        self.sock.close()


def open_stream(base_url: str, path: str = "/api/v1/stream", headers: dict | None = None,
                timeout: float = 10.0) -> Stream:
    """GET `path` with Accept: text/event-stream and Connection: close; the status line and the
    headers are read, the rest is left for `next_event` (or `body`)."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept: text/event-stream", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    stream = Stream(0, {}, sock)
    stream._read_until(lambda: b"\r\n\r\n" in stream.buffer, time.monotonic() + timeout)
    head, _, stream.buffer = stream.buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    stream.status = int(status_line.split()[1])
    for line in header_lines:
        name, _, value = line.partition(":")
        stream.headers.setdefault(name.strip().lower(), value.strip())
    return stream


# --------------------------------------------------------------------------- many at once (asyncio)

async def open_async(host: str, port: int, token: str, source: str | None = None):
    """An asyncio stream's (reader, writer) after its 200 head, from `source` (a loopback
    address) when given; raises RuntimeError with the status otherwise. For tests and
    bench/live.py, which hold thousands at once."""
    import asyncio
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)
    writer.write(f"GET /api/v1/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        writer.close()
        raise RuntimeError(f"stream answered {status}")
    return reader, writer


async def next_event_async(reader) -> str:
    """The name of the next event on an asyncio stream (comments and other fields skipped)."""
    name = None
    while True:
        line = (await reader.readline()).decode().rstrip("\r\n")
        if not line and name:
            return name
        if line.startswith("event:"):
            name = line[6:].strip()
