"""The results manifest on S3 costs the same per file whatever the batch size (appending record n
must not move O(n) bytes): bytes moved for the manifest's objects, counted by moto's server, per
file, at 30 and at 120 files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wavs
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import batch, last_status

pytestmark = pytest.mark.slow


def test_manifest_bytes_per_file_stay_flat(s3: S3, whisper: Any, tmp_path: Path) -> None:
    s3.create_bucket("transcripts")
    per_file = {}
    for count in (30, 120):
        folder = tmp_path / f"in-{count}"
        make_wavs(folder, count, seconds=0.05)
        out = f"s3://transcripts/run-{count}"
        s3.traffic.clear()
        summary = batch(out, max_concurrency=4).run(resolve_inputs(str(folder)))
        assert summary.count("ok") == count
        moved = s3.traffic.bytes_moved(f"transcripts/run-{count}/_transcriptions")
        assert moved > 0, "no manifest traffic counted: is the manifest somewhere else?"
        per_file[count] = moved / count
        assert len(last_status(out)) == count
    assert per_file[120] <= 1.5 * per_file[30], per_file
