"""``web/server.HeadWithBody`` over a real socket: the head of an answer waits for its body
only within one turn of the event loop, so a stream whose data comes later gets its head at
once, and closing never loses what is held."""

from __future__ import annotations

import asyncio
import socket

from alarmdesk.web.server import HeadWithBody


async def _pair() -> tuple[HeadWithBody, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(2)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    return HeadWithBody(transport, loop), theirs  # type: ignore[arg-type]


def _received(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def test_a_head_without_a_body_in_the_same_turn_is_sent_at_the_end_of_it() -> None:
    out, peer = await _pair()
    with peer:
        out.write(b"HTTP/1.1 200 OK\r\n\r\n")
        await asyncio.sleep(0.05)  # the stream's first data has not come yet
        peer.setblocking(False)
        assert peer.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n"
        peer.settimeout(2)
        out.write(b"data: 1\n\n")
        out.write(b"data: 2\n\n")
        assert _received(peer, 18) == b"data: 1\n\ndata: 2\n\n"
        out.close()


async def test_head_and_body_in_one_turn_arrive_together_in_order() -> None:
    out, peer = await _pair()
    with peer:
        out.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
        out.write(b"{}")
        out.write(b"next")
        await asyncio.sleep(0)
        expected = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}next"
        assert _received(peer, len(expected)) == expected
        out.close()


async def test_closing_sends_the_held_head_first() -> None:
    out, peer = await _pair()
    with peer:
        out.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
        out.close()
        await asyncio.sleep(0.05)
        assert _received(peer, 1000) == b"HTTP/1.1 500 Internal Server Error\r\n\r\n"  # then EOF
        assert out.is_closing()  # the transport's own, through the wrapper
