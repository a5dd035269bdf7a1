"""Real Whisper (tiny.en, faster-whisper as KubeAI runs it, one CPU thread per replica), 2 replicas.

- A batch of real-speech files (the five sample recordings, twice over) sent two at a time, beside
  the same files in a sequential loop.
- A five-minute recording (``tests/data/long/support-calls.ogg``) cut into 60 s pieces, two at a
  time, beside the same recording sent whole: speed-up and word error rate side by side.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, airflow_home, record, sandbox_process, serve

REPLICAS, CHUNK = 2, 60.0
SAMPLES = ROOT / "example_dags" / "data" / "audio"
LONG = ROOT / "tests" / "data" / "long" / "support-calls"


def main() -> None:
    airflow_home()
    from local_kubeai.wer import word_error_rate

    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-whisper-"))
    files = []
    for copy in range(2):
        for wav in sorted(SAMPLES.glob("*.wav")):
            files.append(shutil.copy(wav, work / f"{wav.stem}-{copy}.wav"))
    said = {Path(f).name: (SAMPLES / f"{Path(f).stem.rsplit('-', 1)[0]}.txt").read_text() for f in files}
    audio_seconds = sum(Path(f).stat().st_size - 44 for f in files) / 32_000
    sandbox = sandbox_process(
        "--engine", "faster-whisper", "--replica-concurrency", "1", "--startup-delay", "0.2"
    )
    try:
        os.environ.update(sandbox.connections())
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        hook = KubeAISpeechHook()
        serve(hook, "whisper", replicas=REPLICAS)
        hook.transcribe("whisper", str(files[0]))  # warm-up: the first request loads the weights
        started = time.monotonic()
        sequential = {Path(f).name: hook.transcribe("whisper", str(f)).text for f in files}
        sequential_seconds = time.monotonic() - started
        started = time.monotonic()
        with ThreadPoolExecutor(REPLICAS) as pool:
            texts = list(pool.map(lambda f: hook.transcribe("whisper", str(f)).text, files))
        parallel_seconds = time.monotonic() - started
        parallel = {Path(f).name: t for f, t in zip(files, texts, strict=True)}

        reference = LONG.with_suffix(".txt").read_text()
        started = time.monotonic()
        whole = hook.transcribe("whisper", str(LONG.with_suffix(".ogg"))).text
        whole_seconds = time.monotonic() - started
        started = time.monotonic()
        pieces = hook.transcribe(
            "whisper", str(LONG.with_suffix(".ogg")), chunk_seconds=CHUNK, max_concurrency=REPLICAS
        )
        piece_seconds = time.monotonic() - started
        hook.close()
    finally:
        sandbox.stop()

    batch_wer = sum(word_error_rate(said[n], t) for n, t in parallel.items()) / len(parallel)
    same = sequential == parallel
    whole_wer, piece_wer = word_error_rate(reference, whole), word_error_rate(reference, pieces.text)
    ratio, speedup = sequential_seconds / parallel_seconds, whole_seconds / piece_seconds
    rows = [
        {
            "metric": f"{len(files)} real-speech files ({audio_seconds:.0f} s), sequential loop",
            "value": round(sequential_seconds, 2),
            "unit": "s",
        },
        {
            "metric": f"same files, {REPLICAS} at a time through {REPLICAS} replicas",
            "value": round(parallel_seconds, 2),
            "unit": "s",
            "note": f"mean WER {batch_wer:.1%}; same transcripts as the loop: {same}",
        },
        {
            "metric": f"batch speed-up with {REPLICAS} replicas",
            "value": round(ratio, 2),
            "unit": "x",
            "target": ">= 1.5",
            "ok": ratio >= 1.5,
        },
        {
            "metric": "5-minute recording sent whole (one replica works)",
            "value": round(whole_seconds, 2),
            "unit": "s",
            "note": f"WER {whole_wer:.2%}",
        },
        {
            "metric": f"same recording in {len(pieces.pieces or [])} pieces of {CHUNK:.0f} s, {REPLICAS} at a time",
            "value": round(piece_seconds, 2),
            "unit": "s",
            "note": f"WER {piece_wer:.2%}",
        },
        {
            "metric": "long recording: speed-up of pieces, and WER points lost",
            "value": f"{speedup:.2f}x, {100 * (piece_wer - whole_wer):+.2f}",
            "target": ">= 1.5x, <= +1.00",
            "ok": speedup >= 1.5 and piece_wer <= whole_wer + 0.01,
        },
    ]
    print(__doc__.strip().splitlines()[0])
    record("real_whisper", rows)


if __name__ == "__main__":
    main()
