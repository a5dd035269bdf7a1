"""A 60-minute recording sent whole beside the same file cut into pieces, with 4 ready replicas.

The recording is a generated MP3 (utterances and pauses). The sandbox's fake engine takes 10 ms
per second of audio, and each replica serves one request at a time, as a CPU Whisper replica
does. Sent whole, one replica does all the work however many are ready; in 5-minute pieces, 4 at
a time, all four work. Both transcripts are checked: the pieces' SRT must have monotonic cues
covering the hour, with the same words as the whole-file transcript (nothing doubled at seams).
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import tempfile
import time
from pathlib import Path

from common import airflow_home, record, sandbox_process, serve

from tests.long_audio_files import srt_cues

MINUTES, LATENCY, REPLICAS, CHUNK = 60, 0.01, 4, 300.0


def main() -> None:
    airflow_home()
    from local_kubeai.recordings import write_recording

    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-long-"))
    started = time.monotonic()
    recording = write_recording(work / "meeting.mp3", MINUTES * 60, seed=60)
    made = time.monotonic() - started
    sandbox = sandbox_process(
        "--latency-per-audio-second", str(LATENCY), "--replica-concurrency", "1", "--startup-delay", "0.2"
    )
    try:
        os.environ.update(sandbox.connections())
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        hook = KubeAISpeechHook()
        serve(hook, "whisper", replicas=REPLICAS)
        started = time.monotonic()
        whole = hook.transcribe("whisper", str(recording), response_format="srt")
        whole_seconds = time.monotonic() - started
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        pieces = hook.transcribe(
            "whisper", str(recording), response_format="srt", chunk_seconds=CHUNK, max_concurrency=REPLICAS
        )
        piece_seconds = time.monotonic() - started
        growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
        hook.close()
    finally:
        sandbox.stop()

    cues, whole_cues = srt_cues(pieces.content), srt_cues(whole.content)
    starts = [start for start, _, _ in cues]
    monotonic = all(a <= b for a, b in itertools.pairwise(starts)) and all(s < e for s, e, _ in cues)
    words = re.findall(r"\S+", " ".join(text for _, _, text in cues))
    whole_words = re.findall(r"\S+", " ".join(text for _, _, text in whole_cues))
    covered = cues[0][0] < 5 and cues[-1][1] > MINUTES * 60 - 5
    speedup = whole_seconds / piece_seconds
    rows = [
        {
            "metric": f"{MINUTES}-minute MP3 sent whole (one replica works)",
            "value": round(whole_seconds, 2),
            "unit": "s",
            "note": f"{recording.stat().st_size / 1e6:.0f} MB; recording generated in {made:.0f} s",
        },
        {
            "metric": f"same file in {len(pieces.pieces or [])} pieces of {CHUNK:.0f} s, {REPLICAS} at a time",
            "value": round(piece_seconds, 2),
            "unit": "s",
            "note": "decoding overlaps transcription",
        },
        {
            "metric": "speed-up of pieces over whole",
            "value": round(speedup, 2),
            "unit": "x",
            "target": ">= 3",
            "ok": speedup >= 3,
        },
        {
            "metric": "client peak memory growth while decoding and splitting the hour",
            "value": round(growth, 1),
            "unit": "MiB",
            "target": "<= 64",
            "ok": growth <= 64,
            "note": f"the decoded hour is {MINUTES * 60 * 32_000 / 2**20:.0f} MiB; it is spooled to disk",
        },
        {
            "metric": "SRT: monotonic cues covering the hour, same words as the whole file",
            "value": f"{len(cues)} cues, {len(words)} words",
            "target": "all true",
            "ok": monotonic and covered and words == whole_words,
            "note": f"monotonic={monotonic}, covered={covered}, same words={words == whole_words}",
        },
    ]
    print(__doc__.strip().splitlines()[0])
    record("long_recording", rows)


if __name__ == "__main__":
    main()
