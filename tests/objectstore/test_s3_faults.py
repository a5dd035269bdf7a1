"""Storage faults on a real S3 API: every one is a per-file failure naming its cause, what finished
stays recorded, and a batch whose OUTPUT store goes away stops promptly instead of sending the
rest of its files to KubeAI.

"S3 down" is real: the proxy in front of moto resets the open connections and refuses new ones.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.batch import BatchFailed
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wavs
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import batch, last_status

pytestmark = pytest.mark.slow
CONNECTION_WORDS = ("connect", "Connect", "unreachable", "refused", "reset")


def cut_after(s3: S3, sandbox: Any, answered: int) -> threading.Thread:
    """Cut the store once the sandbox has answered ``answered`` transcriptions."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sandbox.stats.snapshot()["outcomes"].get("200", 0) >= answered:
                s3.proxy.cut()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_input_store_down_mid_batch_is_a_per_file_failure_naming_the_cause(
    s3: S3, make_whisper: Any, tmp_path: Path
) -> None:
    sandbox = make_whisper(latency_per_request=0.05)
    s3.create_bucket("calls")
    wavs = make_wavs(tmp_path / "wavs", 12)
    for wav in wavs:
        s3.put(f"s3://calls/day/{wav.name}", wav.read_bytes())
    out = tmp_path / "out"
    job = batch(str(out), max_concurrency=2, max_failed=0.99)
    inputs = resolve_inputs("s3://calls/day/*.wav")
    assert [item.problem for item in inputs] == [None] * 12
    watcher = cut_after(s3, sandbox, 4)
    try:
        summary = job.run(inputs)
    except BatchFailed as err:  # the budget allows 11 failures; either way nothing escapes raw
        summary = err.summary
    watcher.join()
    ok = [r for r in summary.results if r.status == "ok"]
    failed = [r for r in summary.results if r.status == "failed"]
    assert len(ok) >= 4 and failed, [(r.input, r.status) for r in summary.results]
    assert len(ok) + len(failed) == 12
    for record in failed:
        assert record.input.startswith("s3://calls/day/")
        assert record.input.rsplit("/", 1)[-1] in (record.error or ""), record.error  # which file
        assert any(word in (record.error or "") for word in CONNECTION_WORDS), record.error
    # Finished work is recorded: every transcript written has its manifest line, and so has every failure.
    assert last_status(str(out)) == {r.input: r.status for r in summary.results}
    assert sorted(p.stem for p in out.glob("*.txt")) == sorted(
        r.input.rsplit("/", 1)[-1].removesuffix(".wav") for r in ok
    )


def test_output_store_down_stops_the_batch_promptly_and_a_rerun_resumes(
    s3: S3, make_whisper: Any, tmp_path: Path
) -> None:
    sandbox = make_whisper(latency_per_request=0.05)
    s3.create_bucket("transcripts")
    wavs = make_wavs(tmp_path / "wavs", 40)
    out = "s3://transcripts/day"
    watcher = cut_after(s3, sandbox, 6)
    started = time.monotonic()
    with pytest.raises(BatchFailed) as failed:
        batch(out, max_concurrency=2, max_failed=0.5).run(resolve_inputs(str(tmp_path / "wavs")))
    stopped_after = time.monotonic() - started
    watcher.join()
    sent = sandbox.stats.snapshot()["transcriptions"]
    # Promptly: the files in flight when the store went away, not the remaining 34.
    assert sent <= 6 + 2 * 2 + 2, f"{sent} of 40 files sent to KubeAI after the output store went away"
    assert stopped_after < 30
    message = str(failed.value)
    assert any(word in message for word in CONNECTION_WORDS), message
    assert "s3://transcripts/day" in message
    done = {
        r.input.rsplit("/", 1)[-1].removesuffix(".wav")
        for r in failed.value.summary.results
        if r.status == "ok"
    }

    s3.proxy.restore()
    written = {key.removesuffix(".txt") for key in s3.keys(out) if key.endswith(".txt")}
    # 6 answered before the cut, of which at most the 2 in flight had not been written yet
    assert len(written) >= 6 - 2 and written <= done  # every transcript written is a finished file
    recorded = {uri for uri, status in last_status(out).items() if status == "ok"}
    if len(recorded) < len(done):  # records the unreachable store could not take: said so
        assert "could not be written to the manifest" in message, message
    before = sandbox.stats.snapshot()["transcriptions"]
    summary = batch(out, max_concurrency=2).run(resolve_inputs(str(tmp_path / "wavs")))
    assert summary.count("skipped") == len(recorded)
    assert sandbox.stats.snapshot()["transcriptions"] - before == 40 - len(recorded)
    assert len([key for key in s3.keys(out) if key.endswith(".txt")]) == 40
    last = last_status(out)
    assert sorted(last) == sorted(str(w) for w in wavs)
    assert set(last.values()) == ({"ok", "skipped"} if recorded else {"ok"})


def test_archived_object_is_a_per_file_failure_saying_restore_it_first(
    s3: S3, whisper: Any, tmp_path: Path
) -> None:
    s3.create_bucket("calls")
    wav_a, wav_b = make_wavs(tmp_path / "wavs", 2)
    s3.put("s3://calls/day/fresh.wav", wav_a.read_bytes())
    s3.put("s3://calls/day/old.wav", wav_b.read_bytes(), StorageClass="GLACIER")
    out = tmp_path / "out"
    summary = batch(str(out), max_failed=1).run(resolve_inputs("s3://calls/day/*.wav"))
    results = {r.input: r for r in summary.results}
    assert results["s3://calls/day/fresh.wav"].status == "ok"
    archived = results["s3://calls/day/old.wav"]
    assert archived.status == "failed"
    error = archived.error or ""
    assert "archived" in error and "GLACIER" in error and "restore it first" in error, error
    assert "permission denied" not in error
    assert whisper.stats.snapshot()["transcriptions"] == 1  # the archived one was never sent
    assert last_status(str(out)) == {
        "s3://calls/day/fresh.wav": "ok",
        "s3://calls/day/old.wav": "failed",
    }


def test_access_denied_object_is_a_per_file_failure_naming_the_cause(
    s3: S3, whisper: Any, tmp_path: Path
) -> None:
    import boto3
    import botocore.exceptions

    s3.create_bucket("calls")
    wav_a, wav_b = make_wavs(tmp_path / "wavs", 2)
    s3.put("s3://calls/day/open.wav", wav_a.read_bytes())
    s3.put("s3://calls/day/secret.wav", wav_b.read_bytes())
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::calls/day/secret.wav",
            }
        ],
    }
    s3.client.put_bucket_policy(Bucket="calls", Policy=json.dumps(policy))
    probe = boto3.client(
        "s3", endpoint_url=s3.endpoint_url, aws_access_key_id="other", aws_secret_access_key="other"
    )
    try:
        probe.get_object(Bucket="calls", Key="day/secret.wav")
        enforced = ""
    except botocore.exceptions.ClientError as err:
        enforced = err.response["Error"]["Code"]
    if not enforced:
        pytest.skip("moto's server does not enforce bucket policies (it needs IAM authorization on)")
    # moto answers a bare 403 (AWS: 403 with an AccessDenied body); either must name the cause.
    assert enforced in ("AccessDenied", "403")
    out = tmp_path / "out"
    summary = batch(str(out), max_failed=1).run(resolve_inputs("s3://calls/day/*.wav"))
    results = {r.input: r for r in summary.results}
    assert results["s3://calls/day/open.wav"].status == "ok"
    assert results["s3://calls/day/secret.wav"].status == "failed"
    error = results["s3://calls/day/secret.wav"].error or ""
    assert "s3://calls/day/secret.wav" in error
    assert any(word in error for word in ("denied", "AccessDenied", "403", "Forbidden")), error
    assert "archived" not in error
    assert whisper.stats.snapshot()["transcriptions"] == 1


def test_input_store_down_while_a_long_recording_is_decoded_is_a_per_file_failure(
    s3: S3, make_whisper: Any, tmp_path: Path
) -> None:
    """The store goes away between the pieces of a long recording (issue 15: the raw error came
    out of decoding): that file fails naming the cause, the batch's other file is kept."""
    from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
    from local_kubeai.recordings import write_recording

    sandbox = make_whisper(latency_per_request=0.2, replica_concurrency=1)
    s3.create_bucket("calls")
    long = write_recording(tmp_path / "long.wav", 600, seed=3)  # 19 MB: read in several blocks
    s3.put("s3://calls/day/a-long.wav", long.read_bytes())
    (short,) = make_wavs(tmp_path / "wavs", 1)
    out = tmp_path / "out"
    inputs = resolve_inputs(["s3://calls/day/a-long.wav", str(short)])

    def cut_while_decoding() -> None:  # once a first block of the recording has been read
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if s3.traffic.bytes_read("calls/day/a-long.wav") >= 4 * 2**20:
                s3.proxy.cut()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=cut_while_decoding, daemon=True)
    watcher.start()
    summary = batch(str(out), max_concurrency=1, max_failed=1, chunking=ChunkSettings(30, 2)).run(inputs)
    watcher.join()
    results = {r.input: r for r in summary.results}
    failed = results["s3://calls/day/a-long.wav"]
    assert failed.status == "failed", failed
    assert any(word in (failed.error or "") for word in CONNECTION_WORDS), failed.error
    assert results[str(short)].status == "ok"
    assert s3.traffic.bytes_read("calls/day/a-long.wav") < long.stat().st_size  # cut before the end
    assert sandbox.stats.snapshot()["transcriptions"] < 20 + 1  # not all of the 20 pieces were sent
