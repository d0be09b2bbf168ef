"""The messages eventclipd publishes, one pydantic model per topic, and their JSON Schema files.

Why pydantic models: the committed schema files in ``daemon/schema/`` are generated from these
classes (``python -m eventclip.daemon.messages``) and a test checks they are equal, so the code
and the published contract cannot drift apart. Every payload carries ``schema`` (name and major
version) so subscribers can refuse what they do not understand.

Sequence numbers are per topic and gapless: a subscriber that sees ``seq`` jump knows it lost
messages (slow subscriber, high-water mark). Times: ``t_start_us``/``t_end_us`` are sensor µs;
``host_time_us`` is the host's UNIX time in µs when the message was built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
SCHEMA_DIR = Path(__file__).with_name("schema")

StatusState = Literal["starting", "online", "offline", "reconnecting", "error"]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensor_id: str
    seq: int = Field(ge=0, description="gapless per-topic sequence number, from 0")
    host_time_us: int = Field(description="host UNIX time (µs) when the message was built")


class Label(BaseModel):
    """One of the top-k labels of a window."""

    model_config = ConfigDict(extra="forbid")
    label: str
    score: float = Field(ge=0.0, le=1.0, description="softmax probability over the prompt classes")


class LabelsMessage(_Message):
    """Topic ``<prefix>/labels``: one per window that went through the model."""

    schema_: Literal["eventclip.labels/1"] = Field(default="eventclip.labels/1", alias="schema")
    t_start_us: int = Field(description="window start, sensor µs (inclusive)")
    t_end_us: int = Field(description="window end, sensor µs (exclusive)")
    n_events: int = Field(ge=0)
    labels: list[Label]
    anomaly_score: float | None = Field(description="in [0, 1]; null when the prompts define no anomaly set")
    anomaly: bool
    latency_ms: float = Field(
        ge=0.0, description="window close (the reader handing over the chunk that proved the window complete) "
                            "to publish, host ms")


class AnomalyMessage(_Message):
    """Topic ``<prefix>/anomaly``: one per window, ``anomaly`` true when ``score >= threshold``."""

    schema_: Literal["eventclip.anomaly/1"] = Field(default="eventclip.anomaly/1", alias="schema")
    t_start_us: int
    t_end_us: int
    n_events: int = Field(ge=0)
    score: float = Field(ge=0.0, le=1.0)
    threshold: float
    anomaly: bool
    latency_ms: float = Field(ge=0.0)


class LatencyStats(BaseModel):
    """Window close to publish (the age of a result when published), host ms, over the windows published
    in the stats interval."""

    model_config = ConfigDict(extra="forbid")
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class Drops(BaseModel):
    """Everything that was not delivered, counted since start."""

    model_config = ConfigDict(extra="forbid")
    windows_policy: int = Field(description="windows dropped by the drop policy (inference lagging)")
    windows_stale: int = Field(description="windows older than the freshness budget (max_age_ms) on their way to "
                                           "the encoder or out of it: none older is published")
    windows_incomplete: int = Field(description="windows that lost events before windowing (reader queue full, "
                                                "stale chunks shed): dropped, never published as if whole")
    reader_events: int = Field(description="events dropped from the reader's queue at its bound (max_pending_events), "
                                           "oldest first")
    events: dict[str, int] = Field(description="events not published, by reason: reader_overflow, stale_chunks, "
                                               "stale_windows, incomplete_windows, policy, shutdown")
    socket_hwm: dict[str, int] = Field(description="messages dropped at the ZeroMQ high-water mark, per topic")


class ThreadsInfo(BaseModel):
    """The daemon's thread plan (eventclip.daemon.threads) and what the libraries report using."""

    model_config = ConfigDict(extra="forbid")
    cores: int = Field(description="cores the daemon may use")
    limited_by: str = Field(description="what set that: --threads, affinity, or the cgroup quota file")
    decode: int
    encoder: int = Field(description="ONNX Runtime / torch intra-op and OpenMP/BLAS threads")
    interop: int
    numba: int
    decode_override: bool = Field(description="decode threads set by EVENTCLIP_DECODE_THREADS")
    in_use: dict[str, int | None] = Field(description="read back from each library (null: not in use); "
                                                      "onnxruntime 0 means its own default")


class StatsMessage(_Message):
    """Topic ``<prefix>/stats``: every ``stats_interval_s``."""

    schema_: Literal["eventclip.stats/1"] = Field(default="eventclip.stats/1", alias="schema")
    interval_s: float
    uptime_s: float
    events_per_s: float
    windows_per_s: float = Field(description="windows published per second")
    events_total: int = Field(description="events read from the source")
    events_published: int = Field(description="events in the windows published")
    events_in_flight: int = Field(description="events read, neither published nor dropped yet: events_total = "
                                              "events_published + sum(drops.events) + events_in_flight")
    windows_total: int = Field(description="windows closed by windowing")
    windows_published: int
    max_age_ms: float | None = Field(description="freshness budget in ms; null: not applied (unpaced replay)")
    drops: Drops
    gaps: dict[str, int] = Field(description="discontinuities in the source by reason (loop, reconnect, ...)")
    threads: ThreadsInfo | None = Field(description="thread plan; null when the pipeline was built without one")
    queue_depths: dict[str, int]
    latency_ms: LatencyStats
    backend: str
    prompts: str = Field(description="prompts file in use")


class StatusMessage(_Message):
    """Topic ``<prefix>/status``: online at start, offline at stop, error (with detail) on failure."""

    schema_: Literal["eventclip.status/1"] = Field(default="eventclip.status/1", alias="schema")
    state: StatusState
    detail: str = ""


TOPICS: dict[str, type[_Message]] = {
    "labels": LabelsMessage,
    "anomaly": AnomalyMessage,
    "stats": StatsMessage,
    "status": StatusMessage,
}


def encode(message: _Message, encoding: str = "json") -> bytes:
    """Serialise a message for the wire (``json`` UTF-8 or ``msgpack``), with ``schema`` by its alias."""
    return encode_data(message.model_dump(mode="json", by_alias=True), encoding)


def encode_data(data: dict, encoding: str = "json") -> bytes:
    """:func:`encode` for a message already dumped to a dict (``model_dump(mode="json", by_alias=True)``)."""
    if encoding == "msgpack":
        return msgpack.packb(data, use_bin_type=True)
    return json.dumps(data, separators=(",", ":")).encode()


def decode(payload: bytes) -> dict:
    """Inverse of :func:`encode` for either encoding (msgpack maps start with 0x80-0x8f/0xde/0xdf)."""
    if payload[:1] == b"{":
        return json.loads(payload)
    return msgpack.unpackb(payload, raw=False)


def json_schemas() -> dict[str, dict]:
    """The JSON Schema (draft 2020-12) of each topic's payload, keyed by file name."""
    out = {}
    for topic, cls in TOPICS.items():
        schema = cls.model_json_schema(by_alias=True)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://eventclip.dev/schema/{topic}.v{SCHEMA_VERSION}.json"
        out[f"{topic}.v{SCHEMA_VERSION}.json"] = schema
    return out


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate the committed schema files (run after changing a message model)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_schemas():
        print(written)
