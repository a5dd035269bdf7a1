"""A long recording whose pieces come back parseable but malformed: a per-file failure, never a
crash and never an empty transcript marked ok; a malformed cached piece is sent again."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.transcription.batch import BatchTranscriber
from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_records
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from airflow_provider_kubeai_speech.transcription.splitter import Piece
from airflow_provider_kubeai_speech.transcription.stitch import stitch
from local_kubeai import Sandbox
from local_kubeai.testing import wait_until
from tests.batch_setup import make_batch
from tests.integration.conftest import model_manifest

FAST = RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)
SR = 16000


@pytest.fixture
def sandbox(make_kubeai_sandbox: Any) -> Sandbox:
    served = make_kubeai_sandbox(startup_delay=0.1)
    served.store.create("kubeai", model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: (
            (served.store.get("kubeai", "whisper").get("status") or {}).get("replicas", {}).get("ready") == 1
        )
    )
    return served


def batch(out: Path) -> BatchTranscriber:
    return make_batch(
        KubeAISpeechHook(retry=FAST).transcribe, "whisper", OutputFolder(out), logging.getLogger("t"),
        response_format="srt", max_concurrency=2, max_failed=1, chunking=ChunkSettings(10, 2),
    )  # fmt: skip


MALFORMED = [
    (
        "NaN times",
        '{"text": "x", "segments": [{"start": NaN, "end": NaN, "text": "x"}], "words": []}',
        "not finite",
    ),
    ("start missing", '{"text": "x", "segments": [{"end": 1.0, "text": "x"}]}', "start=None"),
    ("words of strings", '{"text": "x", "segments": [], "words": ["x"]}', "words[0] is a str"),
    (
        "text a number",
        '{"text": "x", "segments": [{"start": 0, "end": 1, "text": 5}]}',
        "has a int as its text",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_pieces_are_a_per_file_failure(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path, case: str, body: str, message: str
) -> None:
    sandbox.faults.update({"canned_answer": {"content_type": "application/json", "body": body}})
    out = tmp_path / "out"
    summary = batch(out).run(resolve_inputs(str(recordings["wav"])))
    (failure,) = summary.failures
    assert message in (failure.error or "") and "piece" in (failure.error or "")
    assert not (out / "meeting.srt").exists()
    (line,) = read_manifest_records(out)
    assert line["status"] == "failed"


def test_a_malformed_cached_piece_is_sent_again(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path
) -> None:
    out, wav = tmp_path / "out", str(recordings["wav"])
    hook = KubeAISpeechHook(retry=FAST)

    def third_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00002." in kwargs["filename"]:
            raise KubeAISpeechError("HTTP 500")
        return hook.transcribe(model, audio, **kwargs)

    first = batch(out)
    first.transcribe = third_piece_fails
    first.run(resolve_inputs(wav))
    pieces = out / ".pieces" / "meeting.srt"
    cached = sorted(pieces.glob("piece-*.json"))
    assert pieces.joinpath("piece-00001.json") in cached
    record = json.loads((pieces / "piece-00001.json").read_text())
    record["result"]["segments"] = [{"start": float("nan"), "end": 1.0, "text": "x"}]
    (pieces / "piece-00001.json").write_text(json.dumps(record))
    before = sandbox.stats.snapshot()["transcriptions"]
    summary = batch(out).run(resolve_inputs(wav))
    assert summary.count("ok") == 1, summary.failures
    sent = sandbox.stats.snapshot()["transcriptions"] - before
    assert sent == 4 - (len(cached) - 1)  # the malformed cached piece is sent again, the others reused
    assert [p["cached"] for p in summary.results[0].pieces or []][1] is False


@pytest.mark.parametrize(
    "result",
    [
        {"segments": [{"start": float("nan"), "end": 1.0, "text": "x"}]},
        {"segments": [{"end": 1.0, "text": "x"}]},
        {"segments": "none"},
        {"segments": [], "words": [{"start": "0", "end": 1, "word": "x"}]},
        ["not", "an", "object"],
    ],
)
def test_stitch_refuses_what_it_cannot_place(result: Any) -> None:
    with pytest.raises(KubeAISpeechError, match="piece 1"):
        stitch([(Piece(0, 0, 10 * SR, 0, None), result)], 10.0)
