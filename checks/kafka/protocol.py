"""The few Kafka wire-protocol exchanges the kafka check makes on a raw socket, and what the
broker's ApiVersions ranges say about its release.

librdkafka meets an HTTP server, a TLS port reached in plain text or a SASL listener reached
without SASL with the same generic timeout. A tiny hand-built request tells them apart:
ApiVersions v0 (a request header and an empty body, answered by every Kafka broker since 0.10,
before any authentication), then Metadata v1 without authentication, or SaslHandshake v1.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from preflight.engine.deadline import Deadline

PRODUCE, FETCH, LIST_OFFSETS, METADATA, SASL_HANDSHAKE, API_VERSIONS = 0, 1, 2, 3, 17, 18
API_NAMES = {
    PRODUCE: "Produce",
    FETCH: "Fetch",
    LIST_OFFSETS: "ListOffsets",
    METADATA: "Metadata",
    SASL_HANDSHAKE: "SaslHandshake",
    API_VERSIONS: "ApiVersions",
}

CLIENT_ID = b"sense-preflight"
CORRELATION_ID = 0x5E45
#: Answers larger than these are not Kafka's (ApiVersions v0 is 6 bytes per API, a few
#: hundred bytes in all; Metadata for no topic lists the brokers).
SMALL_ANSWER, BROKER_LIST_ANSWER = 64 * 1024, 4 * 1024 * 1024

Ranges = dict[int, tuple[int, int]]


class NotKafka(Exception):
    """The peer did not answer like a Kafka broker; the message says what it looked like."""


class Closed(NotKafka):
    """The peer closed (or reset) the connection instead of answering."""


def exchange(
    sock: socket.socket,
    api_key: int,
    version: int,
    body: bytes,
    deadline: Deadline,
    max_size: int = SMALL_ANSWER,
) -> bytes:
    """Send one request (header v1) and return the response body after its correlation id."""
    header = struct.pack(">hhih", api_key, version, CORRELATION_ID, len(CLIENT_ID)) + CLIENT_ID
    frame = header + body
    sock.settimeout(deadline.timeout())
    try:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        head = _read(sock, 4, deadline, first=True)
        size = struct.unpack(">i", head)[0]
        if not 4 <= size <= max_size:
            raise NotKafka(f"answered bytes that are not a Kafka response ({_show(head)})")
        payload = _read(sock, size, deadline)
    except (ConnectionResetError, BrokenPipeError):
        raise Closed("reset the connection instead of answering") from None
    if struct.unpack(">i", payload[:4])[0] != CORRELATION_ID:
        raise NotKafka("answered with a frame that does not match the Kafka request")
    return payload[4:]


def _read(sock: socket.socket, count: int, deadline: Deadline, first: bool = False) -> bytes:
    data = b""
    while len(data) < count:
        sock.settimeout(deadline.timeout())
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise Closed(
                "closed the connection without answering"
                if first and not data
                else "closed the connection in the middle of an answer"
            )
        data += chunk
        if first:
            _refuse_foreign(data)
    return data


def _refuse_foreign(data: bytes) -> None:
    """Recognise an HTTP server or a TLS endpoint from the first bytes of its answer."""
    if data[:4] == b"HTTP":
        raise NotKafka("answered with HTTP: this is a web server, not a Kafka listener")
    if len(data) >= 2 and data[0] in (0x15, 0x16) and data[1] == 0x03:
        raise NotKafka("answered with TLS: this listener expects TLS (SSL or SASL_SSL)")


def _show(data: bytes) -> str:
    return data.hex(" ")


def api_versions(sock: socket.socket, deadline: Deadline) -> Ranges:
    """ApiVersions v0: every API the broker serves, with its (min, max) version."""
    body = exchange(sock, API_VERSIONS, 0, b"", deadline)
    error, count = struct.unpack(">hi", body[:6])
    if error:
        raise NotKafka(f"refused ApiVersions v0 (error code {error})")
    if not 0 < count <= 1000 or len(body) < 6 + 6 * count:
        raise NotKafka("answered an ApiVersions response that does not parse")
    entries = (struct.unpack(">hhh", body[6 + 6 * i : 12 + 6 * i]) for i in range(count))
    return {key: (low, high) for key, low, high in entries}


@dataclass(frozen=True)
class Broker:
    """A broker as the cluster metadata lists it: its id and advertised address."""

    id: int
    host: str
    port: int


@dataclass(frozen=True)
class Cluster:
    """Cluster id, controller and brokers from a Metadata response."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[Broker, ...]


def metadata_without_auth(sock: socket.socket, deadline: Deadline) -> Cluster:
    """Metadata v2 for no topic, without authentication (a SASL listener closes instead)."""
    body = exchange(sock, METADATA, 2, struct.pack(">i", 0), deadline, BROKER_LIST_ANSWER)
    try:
        reader = _Reader(body)
        brokers = []
        for _ in range(reader.int32()):
            node, host, port = reader.int32(), reader.string(), reader.int32()
            reader.string()  # rack
            brokers.append(Broker(node, host or "", port))
        cluster_id, controller = reader.string(), reader.int32()
    except struct.error:
        raise NotKafka("answered a Metadata response that does not parse") from None
    return Cluster(cluster_id, controller, tuple(brokers))


class _Reader:
    """Reads big-endian Kafka primitives from a response body."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def int32(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.offset)
        self.offset += 4
        return int(value)

    def string(self) -> str | None:
        (length,) = struct.unpack_from(">h", self.data, self.offset)
        self.offset += 2
        if length < 0:
            return None
        if self.offset + length > len(self.data):
            raise struct.error("string runs past the end")
        value = self.data[self.offset : self.offset + length].decode(errors="replace")
        self.offset += length
        return value


@dataclass(frozen=True)
class Handshake:
    """The broker's answer to SaslHandshake v1: its error code and enabled mechanisms."""

    error: int
    mechanisms: tuple[str, ...]


def sasl_handshake(sock: socket.socket, mechanism: str, deadline: Deadline) -> Handshake:
    """SaslHandshake v1 for `mechanism` (sent after ApiVersions, before any other request)."""
    name = mechanism.encode()
    body = exchange(sock, SASL_HANDSHAKE, 1, struct.pack(">h", len(name)) + name, deadline)
    try:
        (error,) = struct.unpack(">h", body[:2])
        reader = _Reader(body[2:])
        mechanisms = [reader.string() or "" for _ in range(min(reader.int32(), 100))]
    except struct.error:
        raise NotKafka("answered a SaslHandshake response that does not parse") from None
    return Handshake(error, tuple(mechanisms))


# --- what the ranges say about the release --------------------------------------------------

#: (release, api key, max version): the oldest Apache Kafka release whose brokers report this
#: max version in ApiVersions. Basis: the ApiVersions responses of Apache Kafka brokers 2.0 to
#: 4.0 (validVersions of clients/src/main/resources/common/message/*Request.json per release).
#: Only the core APIs every broker serves are used; every later release keeps these versions.
FIRST_SEEN: tuple[tuple[tuple[int, int], int, int], ...] = (
    ((2, 0), FETCH, 8),
    ((2, 0), METADATA, 6),
    ((2, 0), API_VERSIONS, 2),
    ((2, 1), PRODUCE, 7),
    ((2, 1), FETCH, 10),
    ((2, 1), LIST_OFFSETS, 4),
    ((2, 1), METADATA, 7),
    ((2, 2), LIST_OFFSETS, 5),
    ((2, 3), FETCH, 11),
    ((2, 3), METADATA, 8),
    ((2, 4), PRODUCE, 8),
    ((2, 4), METADATA, 9),
    ((2, 4), API_VERSIONS, 3),
    ((2, 7), FETCH, 12),
    ((2, 8), PRODUCE, 9),
    ((2, 8), LIST_OFFSETS, 6),
    ((2, 8), METADATA, 11),
    ((3, 0), LIST_OFFSETS, 7),
    ((3, 1), FETCH, 13),
    ((3, 1), METADATA, 12),
    ((3, 5), FETCH, 15),
    ((3, 5), LIST_OFFSETS, 8),
    ((3, 7), PRODUCE, 10),
    ((3, 7), FETCH, 16),
    ((3, 8), PRODUCE, 11),
    ((3, 9), FETCH, 17),
    ((3, 9), LIST_OFFSETS, 9),
    ((3, 9), API_VERSIONS, 4),
    ((4, 0), PRODUCE, 12),
    ((4, 0), LIST_OFFSETS, 10),
    ((4, 0), METADATA, 13),
)


@dataclass(frozen=True)
class Inference:
    """The oldest Apache Kafka release consistent with the ranges, and the evidence for it."""

    release: tuple[int, int] | None
    """None: no version newer than Kafka 2.0's was seen (an older broker)."""
    basis: str

    @property
    def text(self) -> str:
        return "older than 2.0" if self.release is None else ".".join(map(str, self.release))


def infer_release(ranges: Ranges) -> Inference:
    """The newest release among those whose first-seen API version the broker reports."""
    seen = [
        (release, key, version)
        for release, key, version in FIRST_SEEN
        if key in ranges and ranges[key][1] >= version
    ]
    tracked = ", ".join(
        f"{API_NAMES[key]} v{ranges[key][0]}-{ranges[key][1]}"
        for key in (PRODUCE, FETCH, LIST_OFFSETS, METADATA, API_VERSIONS)
        if key in ranges
    )
    if not seen:
        return Inference(None, f"{tracked}: no API version newer than Apache Kafka 2.0's")
    release, key, version = max(seen)
    name = ".".join(map(str, release))
    return Inference(
        release,
        f"{tracked}: {API_NAMES[key]} v{version} first appears in Apache Kafka {name}, "
        "so the broker is at least that release (the protocol carries no version string)",
    )
