"""How a job's run records read in the state report (`/api/v1/state`, the dashboard)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from autocheckin.times import IsoTime


class JobRunData(BaseModel):
    """One run of a job, read from its record."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: Literal["running", "ok", "partial", "failed", "abandoned", "skipped"]
    ok: bool | None
    trigger: str
    holder: str
    started_at: IsoTime
    finished_at: IsoTime | None
    counts: dict[str, Any]
    error: str | None = Field(description="why it failed, or why a tick was skipped")

    @computed_field(
        description="seconds from start to finish; null while running, and for an abandoned "
        "run (its finish is when it was found dead, not when it stopped)"
    )
    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None or self.status == "abandoned":
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class JobHealthData(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    last_run: JobRunData | None
    running: JobRunData | None = Field(description="the run in progress, if any")
    last_completed: JobRunData | None = Field(description="ok, partial, failed or abandoned")
    last_success: JobRunData | None
    last_skipped: JobRunData | None
    consecutive_failures: int = Field(
        description="failed or abandoned runs since the last ok or partial one"
    )
    next_run_time: str | None
