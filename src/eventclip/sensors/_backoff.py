"""Exponential backoff for reconnecting to cameras and streams.

Why: an unplugged camera or a restarted DV runtime should be retried quickly at first and then
less and less often, so a long outage neither spins the CPU nor floods the log.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Backoff(BaseModel):
    """Delays between reconnection attempts, in seconds: ``initial_s * factor**k`` capped at ``max_s``.

    ``max_attempts`` None retries forever (a daemon waiting for its camera); a number gives up
    after that many failed attempts.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="reconnect after a disconnect; False ends the stream instead")
    initial_s: float = Field(0.1, gt=0, description="first delay (s)")
    factor: float = Field(2.0, ge=1.0, description="each delay is the previous one times this")
    max_s: float = Field(5.0, gt=0, description="longest delay (s)")
    max_attempts: int | None = Field(None, ge=1, description="give up after this many failures; None: never")

    @model_validator(mode="after")
    def _check(self) -> Backoff:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be at least initial_s ({self.initial_s})")
        return self

    def delays(self) -> Iterator[float]:
        """The delay before each attempt, in seconds; ends after ``max_attempts`` delays."""
        delay = self.initial_s
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            yield delay
            attempt += 1
            delay = min(delay * self.factor, self.max_s)
