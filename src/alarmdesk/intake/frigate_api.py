"""Frigate's HTTP API: one GET of a snapshot or clip, streamed through, never stored.

The caller (``service/media.py``) names the path and query (``domain/video.py`` builds them,
overlay-free); this module only fetches, bounds and classifies what comes back:

- Frigate unreachable, or too slow (``timeout_seconds`` to connect and between bytes): 502
  ``frigate_unavailable``;
- Frigate has no such media (its own retention, a camera without recordings): 404
  ``media_not_found``;
- any other status, or a content type that is not the image or video asked for: 502
  ``frigate_error``;
- larger than ``max_bytes`` by its Content-Length: 502 ``media_too_large`` (without one, a
  stream that passes it is cut short).

Redirects are not followed: alarmdesk asks Frigate, and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from alarmdesk.domain.errors import BadGateway, NotFound

__all__ = ["Fetched", "fetch"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass(slots=True)
class Fetched:
    """An open response from Frigate: headers read, body not yet."""

    content_type: str
    length: int | None
    _response: httpx.Response
    _client: httpx.AsyncClient
    _max_bytes: int

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, at most ``max_bytes`` of it; closes the connection at the end.

        Once the first bytes are sent no error status can follow: Frigate failing mid-way,
        or an answer growing past ``max_bytes``, ends the response short (the browser sees an
        incomplete image or clip), and is logged.
        """
        sent = 0
        try:
            async for chunk in self._response.aiter_bytes(_CHUNK):
                sent += len(chunk)
                if sent > self._max_bytes:
                    log.warning("Frigate's answer passed %d bytes: cut short", self._max_bytes)
                    return
                yield chunk
        except httpx.HTTPError as exc:
            log.warning("Frigate failed while sending media: %s", type(exc).__name__)
        finally:
            await self.close()

    async def close(self) -> None:
        await self._response.aclose()
        await self._client.aclose()


async def fetch(
    base_url: str,
    path: str,
    query: tuple[tuple[str, str], ...],
    *,
    expect: str,
    timeout_seconds: float,
    max_bytes: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Fetched:
    """Opens ``GET base_url + path?query``; the body is read by :meth:`Fetched.chunks`.

    Raises:
        BadGateway: unreachable, an error status, another content type, too large.
        NotFound: Frigate answered 404 (``media_not_found``).
    """
    client = httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        transport=transport,
    )
    try:
        response = await client.send(client.build_request("GET", path, params=query), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise BadGateway(
            f"Frigate did not answer ({type(exc).__name__})", code="frigate_unavailable"
        ) from None
    fetched = Fetched(
        content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
        length=int(response.headers["content-length"])
        if response.headers.get("content-length", "").isdigit()
        else None,
        _response=response,
        _client=client,
        _max_bytes=max_bytes,
    )
    try:
        if response.status_code == 404:
            raise NotFound("Frigate no longer has this media", code="media_not_found")
        if response.status_code != 200:
            raise BadGateway(f"Frigate answered HTTP {response.status_code}", code="frigate_error")
        if fetched.content_type != expect:
            raise BadGateway(
                f"Frigate answered {fetched.content_type or 'no content type'}, not {expect}",
                code="frigate_error",
            )
        if fetched.length is not None and fetched.length > max_bytes:
            raise BadGateway(
                f"Frigate's answer is larger than {max_bytes} bytes", code="media_too_large"
            )
    except BaseException:
        await fetched.close()
        raise
    return fetched
