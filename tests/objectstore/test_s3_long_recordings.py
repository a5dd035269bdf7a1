"""Long recordings (``chunk_seconds``) with S3 in and S3 out: pieces kept on S3 after a failed piece,
a rerun sends only the missing pieces, a recording shorter than a piece is sent whole from S3, and
each run reads the long recording once (check + probe + decode: 1.1 times its size, plus one
read-ahead block of the probe, which on this 320 KB file is most of it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAIEndpointError
from airflow_provider_kubeai_speech.transcription.batch import BatchFailed
from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from local_kubeai.engines import fake_transcript_text
from tests.long_audio_files import same_cues
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import batch, hook, last_status, manifest_records, sandbox_stats

SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
pytestmark = pytest.mark.slow


def test_pieces_are_kept_on_s3_and_a_rerun_sends_only_the_missing_ones(
    s3: S3, whisper: Any, recordings: dict[str, Path]
) -> None:
    from airflow_provider_kubeai_speech.transcription.sources import PROBE_BLOCK_SIZE

    s3.create_bucket("calls", "transcripts")
    long_key, short_key = "s3://calls/meetings/meeting.mp3", "s3://calls/meetings/short.wav"
    short = SAMPLES / "call-001.wav"
    s3.put(long_key, recordings["mp3"].read_bytes())
    s3.put(short_key, short.read_bytes())
    size = recordings["mp3"].stat().st_size
    once = 1.1 * size + PROBE_BLOCK_SIZE  # one pass, and the probe's read-ahead
    out = "s3://transcripts/subtitles"
    client = hook()

    def second_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00001." in kwargs["filename"]:
            raise KubeAIEndpointError("HTTP 503 from KubeAI", http_status=503, attempts=3)
        return client.transcribe(model, audio, **kwargs)

    options: dict[str, Any] = {
        "response_format": "vtt",
        "max_concurrency": 1,
        "chunking": ChunkSettings(10, 2),
    }
    inputs = [short_key, long_key]  # the short one first: it is done before the long one fails
    s3.traffic.clear()
    with pytest.raises(BatchFailed) as failed:
        batch(out, second_piece_fails, **options).run(resolve_inputs(inputs))
    assert "HTTP 503" in str(failed.value)
    assert s3.traffic.bytes_read("calls/meetings/meeting.mp3") <= once
    kept = s3.keys(f"{out}/.pieces/meeting.vtt")
    assert kept == ["piece-00000.json", "plan.json"], kept
    assert "short.vtt" in s3.keys(out)  # shorter than a piece: sent whole, streamed from S3

    before = sandbox_stats(whisper)["transcriptions"]
    s3.traffic.clear()
    summary = batch(out, **options).run(resolve_inputs(inputs))
    assert (summary.count("ok"), summary.count("skipped")) == (1, 1)
    assert sandbox_stats(whisper)["transcriptions"] - before == 3  # pieces 1, 2 and 3 only
    assert s3.traffic.bytes_read("calls/meetings/meeting.mp3") <= once

    expected = client.transcribe("whisper", str(recordings["mp3"]), response_format="vtt").content
    same_cues(s3.get(f"{out}/meeting.vtt").decode(), expected)
    assert fake_transcript_text(short.read_bytes()) in " ".join(s3.get(f"{out}/short.vtt").decode().split())
    assert not [key for key in s3.keys(out) if key.startswith(".pieces/")]  # the cache is gone
    records = manifest_records(out)
    long_records = [r for r in records if r["input"] == long_key]
    assert [r["status"] for r in long_records] == ["failed", "ok"]
    assert [p["cached"] for p in long_records[-1]["pieces"]] == [True, False, False, False]
    assert [r["status"] for r in records if r["input"] == short_key] == ["ok", "skipped"]
    assert last_status(out) == {short_key: "skipped", long_key: "ok"}
    client.close()
