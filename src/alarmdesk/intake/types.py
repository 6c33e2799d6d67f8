"""The intake's shared types: the ``[intake]`` configuration and its topic mappings.

Every intake module imports these, and so does :mod:`alarmdesk.config` (which embeds
:class:`IntakeConfig`): this module stays at the bottom of the intake package, imports
nothing of it, and loads no database, codec or crypto library, so that reading the
configuration stays cheap and no intake module needs another one's internals to name
its settings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from alarmdesk.domain.purpose import IDENTIFYING_LABELS, identifying_labels, screen


@dataclass(frozen=True, slots=True)
class TimestampWindow:
    """How far a message timestamp may lie from the receiver clock and still be accepted.

    DC-09 default: up to 20 s ahead of the receiver (``ahead``) and 40 s behind (``behind``).
    Both bounds are inclusive.
    """

    ahead: timedelta = timedelta(seconds=20)
    behind: timedelta = timedelta(seconds=40)

    def __post_init__(self) -> None:
        if self.ahead < timedelta(0) or self.behind < timedelta(0):
            raise ValueError("window bounds must not be negative")


__all__ = [
    "IDENTIFYING_LABELS",
    "IntakeConfig",
    "Port",
    "Seconds",
    "TopicMapping",
    "check_frigate_url",
    "default_frigate_labels",
    "default_frigate_labels_anywhere",
]

# IDENTIFYING_LABELS (faces, recognised names, plates) and the rule over them,
# ``identifying_labels``, are the purpose policy's (domain/purpose/): the set-up's camera
# labels are held to the same rule (domain/centre.py).


@functools.cache
def _frigate_label_rows() -> tuple[tuple[str, str, str], ...]:
    """``data/frigate_labels.tsv``: label, type code, where (``alarm_zones`` | ``anywhere``)."""
    text = (resources.files("alarmdesk") / "data" / "frigate_labels.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
    return tuple((r[0], r[1], r[2]) for r in rows)


def default_frigate_labels() -> dict[str, str]:
    """The labels a centre expects to alarm, out of the box (``data/frigate_labels.tsv``)."""
    return {label: code for label, code, _ in _frigate_label_rows()}


def default_frigate_labels_anywhere() -> list[str]:
    """Labels that alarm anywhere in a camera's view, whatever its alarm zones."""
    return [label for label, _, where in _frigate_label_rows() if where == "anywhere"]


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class TopicMapping(msgspec.Struct, forbid_unknown_fields=True):
    """A generic MQTT topic turned into signals.

    Paths are dotted keys into the JSON message (``"device.id"``, ``"readings.0.t"``). A
    message that is not a JSON object is read as ``{"value": <the message>}``.

    Attributes:
        topic: MQTT topic filter (``+`` and ``#`` allowed).
        type_code: the incident type of its signals.
        source_path: the device id (looked up in the registry); default: the topic.
        device: the device every message on the topic belongs to (a sensor's own mapping in
            the centre's set-up); wins over ``source_path``.
        id_path: the message id, for the idempotency key; default: a digest of the message.
        time_path: when it happened: epoch seconds or ISO 8601; default: when received.
        lat_path, lon_path, zone_path: where; default: the device's registered location.
        summary_path: a text for the summary.
        condition_path: a value that says active or restored; restored when it is one of
            ``restored_values`` (compared lower-case).
        record_only: stored and counted, never alarmed.
    """

    topic: str
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    source_path: str | None = None
    device: str | None = None
    id_path: str | None = None
    time_path: str | None = None
    lat_path: str | None = None
    lon_path: str | None = None
    zone_path: str | None = None
    summary_path: str | None = None
    condition_path: str | None = None
    restored_values: list[str] = msgspec.field(
        default_factory=lambda: ["restored", "restore", "clear", "ok", "false", "off", "0"]
    )
    record_only: bool = False

    def __post_init__(self) -> None:
        # A topic mapping states a purpose: screened like incident types (DESIGN, "Purposes,
        # not keywords"). A refusal fails loading the configuration, naming the rule.
        screen({"topic": self.topic.replace("/", " "), "type_code": self.type_code})


def check_frigate_url(url: str) -> None:
    """An ``http(s)://host[:port][/path]`` URL without credentials, query or fragment.

    Raises:
        ValueError: naming what is wrong (msgspec reports it with the key's path).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"frigate_url must be http(s)://host[:port], not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("frigate_url takes no credentials, query or fragment")


class IntakeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The ``[intake]`` table: equipment adapters and supervision. Off unless a port or URL.

    Attributes:
        dc09_port: TCP and UDP port of the DC-09 receiver; ``None`` = no receiver.
        dc09_host: address to listen on.
        dc09_udp: also listen on UDP.
        dc09_timestamp_window: ``[-behind, ahead]`` seconds accepted around the receiver
            clock (DC-09: ``[-40, 20]``); ``None`` turns the check off. Per account:
            ``timestamp_window`` in the device settings.
        dc09_check_plain_timestamps: also check plaintext frames' timestamps.
        dc09_max_in_flight: frames of one connection handled at once.
        dc09_idle_timeout_seconds: a TCP connection that sent no byte for this long is
            closed (panels that keep their connection send link tests far more often).
        dc09_frame_timeout_seconds: a TCP connection whose frame is still incomplete this
            long after its first byte is closed (a stuck or trickling sender).
        ack_unknown_accounts: ACK (after storing) frames of unknown accounts; else DUH.
        mqtt_url: ``mqtt://[user:password@]host[:port]``; ``None`` = no MQTT.
        mqtt_client_id: fixed client id: the broker keeps its session (and what was not
            acknowledged) across restarts. Unique per alarmdesk node.
        mqtt_session_expiry_seconds: how long the broker keeps the session while we are away.
        mqtt_max_in_flight: unacknowledged messages at once (MQTT 5 Receive Maximum).
        frigate_topic_prefix: Frigate's topic prefix; ``None`` = no Frigate.
        frigate_alarm_source: raise from tracked objects (``events``) or review alerts.
        frigate_labels: object label → incident type (cameras may override). Default:
            ``data/frigate_labels.tsv`` (a person or a vehicle in an alarm zone → TRESPASS,
            fire → FUNK, smoke → FSMOKE); an empty table turns camera alarms off. Labels
            that identify a person (face, license_plate, sub_label) are refused.
        frigate_labels_anywhere: labels that alarm anywhere in view, whatever a camera's
            ``alarm_zones`` (fire, smoke); the others alarm only inside them.
        frigate_source_id: device id of the Frigate server (availability); default
            ``nvr-<prefix>``.
        frigate_url: Frigate's HTTP API (``http://frigate:5000``), from which alarmdesk fetches
            the snapshots and clips operators see on an incident (docs/video.md); ``None``:
            no video on incidents.
        frigate_timeout_seconds: one request to Frigate's API (connect, and between bytes).
        frigate_max_bytes: the largest snapshot or clip passed on; a larger one is refused.
        frigate_snapshot: the event snapshot asked for: ``snapshot.jpg`` (with ``bbox=0``,
            ``timestamp=0``, ``crop=0``: no overlay; Frigate 0.16 and later honour them for
            finished events), or the clean copy ``snapshot-clean.webp`` (0.16+) or
            ``snapshot-clean.png`` (0.14, 0.15) when snapshots keep a ``clean_copy``.
        frigate_clip_before_seconds, frigate_clip_after_seconds: the recording shown for a
            panel zone's linked camera, around the time of the alarm.
        mqtt_topics: generic topics, see :class:`TopicMapping`.
        plates_enabled_types: incident types whose camera signals may keep plate text.
        supervision_grace_seconds: a device is missing after its interval plus this.
        devices_reload_seconds: how often the device registry is read again.
        cap_feeds: URLs of Atom or RSS feeds of CAP 1.2 alerts to poll (docs/cap.md).
        cap_poll_seconds: how often each CAP feed is read.
        cap_mapping: a TSV file replacing ``data/cap_mapping.tsv`` (CAP category, event,
            urgency, severity, certainty → incident type and priority), for feeds and
            ``POST /api/v1/cap`` alike.
        cap_languages: the info block read from a multilingual alert: the first in one of
            these languages (prefixes of CAP's ``language``), else the first.
    """

    dc09_port: Port | None = None
    dc09_host: str = "127.0.0.1"
    dc09_udp: bool = True
    dc09_timestamp_window: list[float] | None = msgspec.field(default_factory=lambda: [-40.0, 20.0])
    dc09_check_plain_timestamps: bool = False
    dc09_max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    dc09_idle_timeout_seconds: Seconds = 90.0
    dc09_frame_timeout_seconds: Seconds = 30.0
    ack_unknown_accounts: bool = True
    mqtt_url: str | None = None
    mqtt_client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "alarmdesk"
    mqtt_session_expiry_seconds: Annotated[int, msgspec.Meta(ge=0)] = 7 * 86400
    mqtt_max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 100
    mqtt_reconnect_seconds: Seconds = 2.0
    frigate_topic_prefix: str | None = "frigate"
    frigate_alarm_source: Literal["events", "reviews"] = "events"
    frigate_labels: dict[str, str] = msgspec.field(default_factory=default_frigate_labels)
    frigate_labels_anywhere: list[str] = msgspec.field(
        default_factory=default_frigate_labels_anywhere
    )
    frigate_source_id: str | None = None
    frigate_url: str | None = None
    frigate_timeout_seconds: Seconds = 5.0
    frigate_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024 * 1024
    frigate_snapshot: Literal["snapshot.jpg", "snapshot-clean.webp", "snapshot-clean.png"] = (
        "snapshot.jpg"
    )
    frigate_clip_before_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 10
    frigate_clip_after_seconds: Annotated[int, msgspec.Meta(ge=1, le=600)] = 30
    mqtt_topics: list[TopicMapping] = msgspec.field(default_factory=list)
    plates_enabled_types: list[str] = msgspec.field(default_factory=list)
    supervision_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    devices_reload_seconds: Seconds = 300.0
    cap_feeds: list[str] = msgspec.field(default_factory=list)
    cap_poll_seconds: Annotated[float, msgspec.Meta(ge=1)] = 60.0
    cap_mapping: str | None = None
    cap_languages: list[str] = msgspec.field(default_factory=lambda: ["en"])

    def __post_init__(self) -> None:
        screen(
            {
                "frigate_labels": [f"{k} {v}" for k, v in self.frigate_labels.items()],
                "frigate_labels_anywhere": self.frigate_labels_anywhere,
            }
        )
        if self.frigate_url is not None:
            check_frigate_url(self.frigate_url)
        identifying = identifying_labels(self.frigate_labels)
        if identifying:
            raise ValueError(
                "frigate_labels cannot map labels that identify a person: " + ", ".join(identifying)
            )
        for url in self.cap_feeds:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"cap_feeds: {url!r} is not an http(s) URL")

    @property
    def enabled(self) -> bool:
        return self.dc09_port is not None or self.mqtt_url is not None or bool(self.cap_feeds)
