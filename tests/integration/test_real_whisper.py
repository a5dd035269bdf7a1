"""Real Whisper (tiny.en, faster-whisper, as KubeAI's FasterWhisper engine runs it) through the
sandbox and the hook: long recordings cut in pieces must lose nothing against the whole file.

The recordings in ``tests/data/long`` are five minutes of Festival speech each, with short pauses
that force cuts inside speech and one with office noise (``make_recordings.py`` made them once).
The whole-file transcript is the baseline (one per recording per session); for each piece length
the stitched transcript's word error rate must stay within a point of it, keep the recording's
last words, insert nothing at the seams, and give cues that are monotonic, do not overlap and
cover the speech.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from local_kubeai import Sandbox, SandboxConfig
from local_kubeai.testing import wait_until
from local_kubeai.wer import errors, normalise
from tests.integration.conftest import model_manifest
from tests.long_audio_files import srt_cues

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LONG = Path(__file__).resolve().parents[1] / "data" / "long"
RECORDINGS = ("support-calls", "team-meeting", "noisy-office")
SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
FAST = RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)


@pytest.fixture(scope="module")
def whisper() -> Iterator[Sandbox]:
    """A sandbox on real Whisper with a Model of two ready replicas, its connections set."""
    sandbox = Sandbox(SandboxConfig(engine="faster-whisper", startup_delay=0.0)).start()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in sandbox.airflow_connections().items():
            patch.setenv(key, value)
        sandbox.store.create(
            "kubeai", model_manifest("whisper", replicas=2, scaling={"min_replicas": 2}), "t"
        )
        wait_until(
            lambda: (
                (sandbox.store.get("kubeai", "whisper").get("status") or {}).get("replicas", {}).get("ready")
                == 2
            )
        )
        yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def whole_files(whisper: Sandbox) -> dict[str, str]:
    """Each recording's whole-file transcript, made once (what KubeAI returns for the file)."""
    return {}


def _whole(cache: dict[str, str], name: str) -> str:
    if name not in cache:
        cache[name] = KubeAISpeechHook(retry=FAST).transcribe("whisper", str(LONG / f"{name}.ogg")).text
    return cache[name]


@pytest.mark.parametrize("chunk", [30, 60, 120])
@pytest.mark.parametrize("name", RECORDINGS)
def test_long_recording_in_pieces_loses_nothing(whole_files: dict[str, str], name: str, chunk: int) -> None:
    reference = (LONG / f"{name}.txt").read_text()
    whole = errors(reference, _whole(whole_files, name))
    result = KubeAISpeechHook(retry=FAST).transcribe(
        "whisper", str(LONG / f"{name}.ogg"), response_format="srt", chunk_seconds=chunk, max_concurrency=2
    )
    assert result.pieces is not None and len(result.pieces) >= 300 // chunk
    cues = srt_cues(result.content)
    heard = " ".join(text for *_, text in cues)
    stitched = errors(reference, heard)
    assert stitched.rate <= whole.rate + 0.01, (whole, stitched)
    assert stitched.insertions <= whole.insertions + 3, (whole, stitched)  # nothing made up at seams
    assert stitched.deletions <= whole.deletions + 3, (whole, stitched)  # nothing lost at a piece's end
    assert normalise(reference)[-4:] == normalise(heard)[-4:]  # the recording's last words
    assert all(start < end for start, end, _ in cues)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))  # monotonic, no overlap
    duration = 300.0
    assert cues[0][0] < 2.0 and cues[-1][1] > duration  # cover the speech (every recording is > 5 min)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(cues)]
    assert max(gaps) < 6.0  # no stretch of speech without a cue (the longest pause is 2.5 s)


def test_verbose_json_words_and_segments_through_the_hook(whisper: Sandbox) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    clip = SAMPLES / "call-002.wav"
    said = clip.with_suffix(".txt").read_text()
    with_words = hook.transcribe(
        "whisper", str(clip), response_format="verbose_json", timestamp_granularities=["segment", "word"]
    ).data
    assert with_words is not None and errors(said, with_words["text"]).rate <= 0.1
    words = with_words["words"]
    assert [w["word"] for w in words] and normalise(" ".join(w["word"] for w in words)) == normalise(
        with_words["text"]
    )
    assert all(0 <= w["start"] <= w["end"] <= with_words["duration"] + 0.05 for w in words)
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))
    segment = with_words["segments"][0]
    assert segment["words"] and segment["temperature"] == 0.0 and segment["tokens"]
    assert with_words["text"][0].isupper() and with_words["text"].rstrip()[-1] in ".?!"  # Whisper punctuates
    plain = hook.transcribe("whisper", str(clip), response_format="verbose_json").data
    assert plain is not None and plain["words"] is None and plain["segments"][0]["words"] is None
    srt = hook.transcribe("whisper", str(clip), response_format="srt").content
    assert srt.startswith("1\n00:00:0") and srt.endswith("\n\n")
    assert hook.transcribe("whisper", str(clip), response_format="vtt").content.startswith(
        "WEBVTT\n\n00:00:00.000 --> "
    )


def test_hotwords_vad_and_temperature_reach_the_engine(whisper: Sandbox) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    clip = SAMPLES / "meeting-001.wav"
    said = clip.with_suffix(".txt").read_text()
    fields: dict[str, Any] = {"vad_filter": True, "hotwords": "budget"}
    assert (
        errors(said, hook.transcribe("whisper", str(clip), temperature=0.0, extra_fields=fields).text).rate
        <= 0.1
    )
