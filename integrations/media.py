"""Media parents send on WhatsApp (photos, PDFs, voice notes), fetched from the Cloud API
after the webhook is answered, and kept by us: WhatsApp's media URLs expire, and a child's
record must not depend on them.

`GET {api}/{media-id}` (bearer token) gives a short-lived `url`, the `mime_type` and the
`file_size`; `GET url` (bearer token) gives the bytes. Only the types below are kept, up to
`MAX_MEDIA_BYTES`; anything else is refused with its reason, which the thread then says.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import structlog

from integrations.whatsapp import REQUEST_TIMEOUT_SECONDS, WhatsAppConfig

log = structlog.get_logger("collab.integrations.media")

MAX_MEDIA_BYTES = 16 * 1024 * 1024  # WhatsApp's own limit for audio and video
ALLOWED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "application/pdf",
        "audio/ogg",
        "audio/mpeg",
        "audio/aac",
        "audio/mp4",
        "audio/amr",
    }
)


class MediaRefused(Exception):
    """A file we do not keep (type, size, or the Cloud API could not give it)."""


@dataclass(frozen=True, slots=True)
class Media:
    mime: str
    data: bytes


def base_type(mime: str) -> str:
    return mime.split(";", 1)[0].strip().lower()


class MediaFetcher:
    def __init__(
        self, config: WhatsAppConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {config.access_token}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
        )
        self._api = config.api_url.rstrip("/")

    async def fetch(self, media_id: str) -> Media:
        if not media_id.isalnum():
            raise MediaRefused("not a media id")
        try:
            info = await self._client.get(f"{self._api}/{media_id}")
            info.raise_for_status()
            described = info.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MediaRefused(
                f"the Cloud API did not describe it ({type(exc).__name__})"
            ) from None
        mime = base_type(str(described.get("mime_type", "")))
        size = described.get("file_size")
        url = described.get("url")
        if mime not in ALLOWED_TYPES:
            raise MediaRefused(f"{mime or 'unknown'} files are not kept")
        if not isinstance(size, int) or size > MAX_MEDIA_BYTES:
            raise MediaRefused("too large to keep")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MediaRefused("no download address")
        data = bytearray()
        try:
            async with self._client.stream("GET", url) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_MEDIA_BYTES:
                        raise MediaRefused("too large to keep")
        except httpx.HTTPError as exc:
            raise MediaRefused(f"the download failed ({type(exc).__name__})") from None
        return Media(mime, bytes(data))

    async def aclose(self) -> None:
        await self._client.aclose()
