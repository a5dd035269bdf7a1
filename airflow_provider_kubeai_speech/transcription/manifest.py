"""The results manifest: one JSON line per input per run, appended as each input finishes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

MANIFEST_NAME = "_transcriptions.jsonl"


@dataclass
class FileResult:
    """What happened to one input.

    :param input: the input's location.
    :param output: where its transcript is (None when it failed).
    :param status: ``ok``, ``skipped`` (already transcribed) or ``failed``.
    :param attempts: requests made for it (0 when skipped or refused before sending).
    :param bytes: bytes uploaded.
    :param duration: seconds spent on it.
    :param error: why it failed.
    :param run_id: the Airflow run that produced the line.
    :param pieces: for a long recording sent in pieces: each piece's span (seconds), attempts,
        and whether its result came from an earlier run.
    """

    input: str
    output: str | None
    status: str
    attempts: int = 0
    bytes: int = 0
    duration: float = 0.0
    error: str | None = None
    run_id: str | None = None
    pieces: list[dict[str, Any]] | None = None

    def to_json(self) -> str:
        record: dict[str, Any] = asdict(self)
        record["duration"] = round(self.duration, 3)
        if self.pieces is None:
            del record["pieces"]
        record["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return json.dumps(record, ensure_ascii=False)


def read_manifest(lines: list[str]) -> list[dict[str, Any]]:
    """Parse manifest lines, ignoring a last line a killed run may have left incomplete."""
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
