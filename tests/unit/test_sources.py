"""How inputs are resolved: each recording once, existing names taken literally, symlink loops harmless.

Regression tests for issue 14, items 13 (duplicates), 16 (``[``, ``]``, ``?`` in existing names)
and 17 (``**`` following directory symlinks).
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription import sources
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs

WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "


def wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    return path


@pytest.fixture
def memory_store() -> Any:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    attach("memory", fs=fs)
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


# -- #14.13: each input once ----------------------------------------------------------------------


def test_the_same_file_twice_is_one_input(tmp_path: Path) -> None:
    a = wav(tmp_path / "calls" / "a.wav")
    os.symlink(a, tmp_path / "calls" / "link-to-a.wav")
    found = resolve_inputs(
        [
            str(a),
            str(a),
            str(tmp_path / "calls" / ".." / "calls" / "a.wav"),
            str(tmp_path / "calls/link-to-a.wav"),
        ]
    )
    assert [i.uri for i in found] == [str(a)]


def test_a_folder_and_a_glob_over_it_give_each_file_once_in_first_seen_order(tmp_path: Path) -> None:
    for name in ("c.wav", "a.wav", "b.wav"):
        wav(tmp_path / "calls" / name)
    found = resolve_inputs(
        [str(tmp_path / "calls" / "c.wav"), str(tmp_path / "calls"), str(tmp_path / "calls/*.wav")]
    )
    assert [i.name for i in found] == ["c.wav", "a.wav", "b.wav"]


def test_remote_duplicates_are_compared_without_the_connection_id(memory_store: Any) -> None:
    from airflow.sdk import ObjectStoragePath

    for name in ("a.wav", "b.wav", "c.wav"):
        memory_store.pipe(f"/calls/{name}", WAV)
    found = resolve_inputs(
        [
            "memory://calls/b.wav",
            ObjectStoragePath("memory://calls/b.wav"),
            "memory://calls",
            "memory://calls/*.wav",
        ]
    )
    assert [i.uri for i in found] == ["memory://calls/b.wav", "memory://calls/a.wav", "memory://calls/c.wav"]


# -- #14.16: an existing name is that file, whatever its characters --------------------------------


def test_an_existing_name_with_brackets_is_that_file(tmp_path: Path) -> None:
    meeting = wav(tmp_path / "Meeting [final].wav")
    wav(tmp_path / "Meeting f.wav")  # what the pattern [final] would match
    (found,) = resolve_inputs(str(meeting))
    assert (found.uri, found.problem) == (str(meeting), None)


def test_an_existing_name_with_a_question_mark_is_that_file_and_a_missing_one_is_a_glob(
    tmp_path: Path,
) -> None:
    for name in ("call?.wav", "call1.wav", "call2.wav"):
        wav(tmp_path / name)
    assert [i.name for i in resolve_inputs(str(tmp_path / "call?.wav"))] == ["call?.wav"]
    os.unlink(tmp_path / "call?.wav")
    assert [i.name for i in resolve_inputs(str(tmp_path / "call?.wav"))] == ["call1.wav", "call2.wav"]


def test_an_existing_folder_with_brackets_is_read_as_a_folder(tmp_path: Path) -> None:
    wav(tmp_path / "day [1]" / "a.wav")
    assert [i.name for i in resolve_inputs(str(tmp_path / "day [1]"))] == ["a.wav"]


def test_remote_names_with_glob_characters_are_objects_when_they_exist(memory_store: Any) -> None:
    for name in ("Meeting [final].wav", "call?.wav", "call1.wav", "call2.wav"):
        memory_store.pipe(f"/calls/{name}", WAV)
    assert [i.name for i in resolve_inputs("memory://calls/Meeting [final].wav")] == ["Meeting [final].wav"]
    assert [i.name for i in resolve_inputs("memory://calls/call?.wav")] == ["call?.wav"]
    assert [i.name for i in resolve_inputs("memory://calls/call[12].wav")] == ["call1.wav", "call2.wav"]


# -- #14.17: symlinked folders and loops -----------------------------------------------------------


def test_a_symlink_loop_does_not_multiply_a_recursive_glob(tmp_path: Path) -> None:
    wav(tmp_path / "calls" / "a.wav")
    wav(tmp_path / "calls" / "sub" / "b.wav")
    os.symlink(tmp_path / "calls", tmp_path / "calls" / "sub" / "loop")
    os.symlink(tmp_path / "calls" / "sub", tmp_path / "calls" / "again")
    started = time.monotonic()
    found = resolve_inputs(str(tmp_path / "calls" / "**" / "*.wav"))
    assert time.monotonic() - started < 5
    assert sorted(i.name for i in found) == ["a.wav", "b.wav"]
    assert all(i.problem is None for i in found)


def test_a_folder_with_a_symlink_loop_gives_each_file_once(tmp_path: Path) -> None:
    wav(tmp_path / "calls" / "a.wav")
    wav(tmp_path / "calls" / "sub" / "b.wav")
    os.symlink(tmp_path / "calls", tmp_path / "calls" / "sub" / "loop")
    assert sorted(i.name for i in resolve_inputs(str(tmp_path / "calls"))) == ["a.wav", "b.wav"]


def test_a_symlink_given_explicitly_is_followed_and_linked_files_are_read(tmp_path: Path) -> None:
    wav(tmp_path / "store" / "a.wav")
    os.symlink(tmp_path / "store", tmp_path / "latest")
    os.symlink(tmp_path / "store" / "a.wav", tmp_path / "store" / "b.wav")
    assert [i.name for i in resolve_inputs(str(tmp_path / "latest"))] == ["a.wav"]  # b.wav is a.wav
    assert [i.name for i in resolve_inputs(str(tmp_path / "latest" / "*.wav"))] == ["a.wav"]


PATTERNS = [
    "*.wav",
    "**/*.wav",
    "**",
    "*/*.wav",
    "x/**/*.flac",
    "x/y/[ab].wav",
    "x/y/[!a].wav",
    "?.wav",
    "x/*/z/*",
    "**/z/*.wav",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_local_glob_finds_what_glob_finds_without_links(
    tmp_path: Path, pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "a.wav", "b.wav", ".hidden.wav", "x/a.wav", "x/b.flac", "x/y/a.wav", "x/y/b.wav", "x/y/c.wav",
        "x/y/z/a.wav", "x/.h/a.wav", "x/y/z/deep/a.flac", "q/z/b.wav",
    ):  # fmt: skip
        wav(tmp_path / name)
    expected = sorted(p for p in glob.glob(str(tmp_path / pattern), recursive=True) if os.path.isfile(p))
    assert sorted(sources.local_glob(str(tmp_path / pattern))) == expected
    monkeypatch.chdir(tmp_path)  # relative patterns too
    assert sorted(sources.local_glob(pattern)) == sorted(
        p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)
    )


def test_the_default_connection_is_looked_up_once_per_scheme(
    memory_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_kubeai_speech.transcription import storage

    for i in range(20):
        memory_store.pipe(f"/calls/c{i}.wav", WAV)
    looked_up: list[str] = []
    monkeypatch.setitem(storage.DEFAULT_CONN_IDS, "memory", "memory_default")
    monkeypatch.setattr(storage, "_connection_exists", lambda conn_id: looked_up.append(conn_id) or False)
    found = resolve_inputs([f"memory://calls/c{i}.wav" for i in range(20)])
    assert len(found) == 20 and all(i.problem is None for i in found)
    assert looked_up == ["memory_default"]


def test_a_listing_the_store_refuses_is_named_by_its_cause() -> None:
    """Issue 15.5: a glob over a prefix the store refuses says what the store said, not a raw error."""
    from airflow.sdk.io import attach
    from botocore.exceptions import ClientError
    from fsspec.implementations.memory import MemoryFileSystem

    class Refusing(MemoryFileSystem):
        protocol = "refusing"

        def find(self, *args: Any, **kwargs: Any) -> Any:
            raise PermissionError("Access Denied") from ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2"
            )

        glob = find

    import fsspec

    fsspec.register_implementation("refusing", Refusing, clobber=True)
    attach("refusing", fs=Refusing(skip_instance_cache=True))
    (item,) = resolve_inputs("refusing://calls/day/*.wav")
    assert item.problem is not None and item.problem.startswith("cannot list 'refusing://calls/day/*.wav'")
    assert "PermissionError" not in item.problem and "denied" in item.problem.lower()
