"""Pure pieces of the batch engine: names confined to the output folder, sniffing, budgets, formats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.batch import failure_budget
from airflow_provider_kubeai_speech.transcription.formats import timestamp, to_srt, to_vtt
from airflow_provider_kubeai_speech.transcription.manifest import FileResult, read_manifest
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder, output_names, safe_stem
from airflow_provider_kubeai_speech.transcription.sources import check_input, resolve_inputs, sniff_audio


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("call.wav", "call"),
        ("../../etc/passwd.wav", "passwd"),
        ("/abs/path/x.wav", "x"),
        ("..wav", "wav"),
        ("..", "audio"),
        ("%2e%2e%2fsecret.wav", "%2e%2e%2fsecret"),  # stays a plain, harmless name
        ("a\\..\\b.wav", "b"),
        ("c:evil.wav", "c_evil"),
        ("new\nline.wav", "new_line"),
        ("réunion d'équipe.wav", "réunion d'équipe"),
        ("...hidden.wav", "hidden"),
    ],
)
def test_safe_stem(name: str, stem: str) -> None:
    assert safe_stem(name) == stem


def test_long_names_are_shortened_with_a_hash() -> None:
    stem = safe_stem("é" * 300 + ".wav")
    assert len(stem.encode()) <= 200 and stem != safe_stem("é" * 299 + "x.wav")


def test_colliding_names_get_a_stable_hash_whatever_the_order() -> None:
    uris = ["/a/call.wav", "/b/call.wav", "/c/other.wav", "/d/CALL.wav"]
    names = output_names(uris, "srt")
    assert names[2] == "other.srt" and len(set(names)) == 4
    assert all(n.startswith(("call--", "CALL--")) for n in (names[0], names[1], names[3]))
    assert output_names(list(reversed(uris)), "srt") == list(reversed(names))


def test_output_folder_refuses_escapes_and_writes_atomically(tmp_path: Path) -> None:
    folder = OutputFolder(tmp_path / "out")
    folder.prepare()
    for bad in ("../x.txt", "/etc/x.txt", "a/b.txt", "..", ""):
        with pytest.raises(ValueError, match="output"):
            folder.target(bad)
    left = tmp_path / "out" / ".x.txt.abc.partial"  # an earlier version's name: no owner in it
    left.write_text("left by a killed run")
    assert folder.remove_partials() == 0  # it may be another task's live write
    os.utime(left, (1, 1))
    assert folder.remove_partials() == 1  # an hour old: nobody is writing it
    folder.write("x.txt", "hello\n")
    assert (tmp_path / "out" / "x.txt").read_text() == "hello\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.txt"]
    os.symlink(tmp_path, tmp_path / "out" / "link.txt")
    with pytest.raises(ValueError, match="outside"):
        folder.target("link.txt")


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"ID3\x04\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"OggS\x00\x02\x00\x00", "ogg"),
        (b"\x00\x00\x00\x20ftypM4A ", "mp4"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "webm"),
        (b"%PDF-1.7\n", None),
        (b"hello world", None),
    ],
)
def test_sniff_audio(header: bytes, kind: str | None) -> None:
    assert sniff_audio(header) == kind


def test_inputs_are_resolved_and_checked(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.flac").write_bytes(b"fLaC\x00\x00\x00\x22")
    (tmp_path / "sub" / "notes.txt").write_text("x")
    found = resolve_inputs([str(tmp_path), str(tmp_path / "*.wav"), str(tmp_path / "nothing-*.wav")])
    assert [i.name for i in found] == ["a.wav", "b.flac", "nothing-*.wav"]  # a.wav once
    assert found[2].problem and "matches no file" in found[2].problem


def test_unreadable_inputs_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # File modes do not stop root (CI runs as root): the permission error is raised by the opener.
    from airflow_provider_kubeai_speech.transcription.sources import AudioInput

    locked = tmp_path / "locked.wav"
    locked.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")

    def refuse(self: AudioInput) -> Any:
        def opener() -> Any:
            raise PermissionError(13, "Permission denied", str(locked))

        return opener

    monkeypatch.setattr(AudioInput, "opener", refuse)
    item = check_input(resolve_inputs(str(locked))[0])
    assert item.problem == f"{str(locked)!r} is not readable (permission denied)"


@pytest.mark.parametrize(
    ("max_failed", "total", "budget"),
    [(0, 100, 0), (3, 100, 3), (0.05, 100, 5), (0.05, 10, 0), (0.5, 3, 1), (1, 1000, 1)],
)
def test_failure_budget(max_failed: float, total: int, budget: int) -> None:
    assert failure_budget(max_failed, total) == budget


def test_failure_budget_refuses_negative() -> None:
    with pytest.raises(ValueError, match="max_failed"):
        failure_budget(-1, 10)


def test_manifest_tolerates_a_cut_last_line() -> None:
    line = FileResult("/in/a.wav", "/out/a.json", "ok", attempts=2, bytes=10, duration=0.5).to_json()
    records = read_manifest([line, line[:20]])
    assert len(records) == 1 and records[0]["attempts"] == 2


def test_subtitle_formats() -> None:
    segments = [
        {"start": 0.0, "end": 1.5, "text": " hello"},
        {"start": 3661.25, "end": 3662.0, "text": "world "},
    ]
    assert timestamp(3661.25, separator=",") == "01:01:01,250"
    assert (
        to_srt(segments)
        == "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n01:01:01,250 --> 01:01:02,000\nworld\n"
    )
    assert to_vtt(segments).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\n")
