"""The manifest's parts and reader, output names, and what storage errors are called."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_kubeai_speech.transcription.manifest import (
    LEGACY_MANIFEST_NAME,
    MANIFEST_FOLDER,
    FileResult,
    ManifestWriter,
    read_manifest_records,
    read_manifest_state,
    settings_fingerprint,
)
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder, output_names
from airflow_provider_kubeai_speech.transcription.storage import describe_storage_error

# -- records and parts ---------------------------------------------------------------------------


def test_records_are_ascii_lines_that_round_trip() -> None:
    line = FileResult("/in/a\u2028b\x85c d\u00e9.wav", "/out/x.json", "ok", settings="abc").to_json()
    assert line.isascii() and len(line.splitlines()) == 1
    record = json.loads(line)
    assert record["input"] == "/in/a\u2028b\x85c d\u00e9.wav" and record["settings"] == "abc"


def test_the_reader_gives_the_last_state_per_input_over_every_part(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = FileResult("/in/a.wav", None, "failed", error="503").to_json()
    (out / LEGACY_MANIFEST_NAME).write_text(old + "\n" + old[:30])  # a torn last line
    for status in ("ok", "failed"):
        writer = ManifestWriter(OutputFolder(out), "run")
        writer.open()
        writer.append(FileResult("/in/b.wav", "/out/b.json", status).to_json())
        if status == "ok":
            writer.append(FileResult("/in/a.wav", "/out/a.json", "ok", settings="s1").to_json())
        writer.close()
    state = read_manifest_state(out)
    assert state.parts == 3 and state.records == 4
    assert state.status("/in/a.wav") == "ok" and state.done("/in/a.wav", "/out/a.json", "s1")
    assert not state.done("/in/a.wav", "/out/a.json", "other settings")
    assert state.status("/in/b.wav") == "failed" and state.get("/in/c.wav") is None
    assert len(read_manifest_records(out)) == 4
    assert len(list((out / MANIFEST_FOLDER).glob("part-*.jsonl"))) == 2


def test_settings_fingerprint_ignores_key_order_and_sees_every_value() -> None:
    base = {"model": "m", "language": "en", "extra_fields": {"a": 1, "b": 2}}
    assert settings_fingerprint(base) == settings_fingerprint(dict(reversed(base.items())))
    assert settings_fingerprint(base) != settings_fingerprint({**base, "language": "nl"})
    assert settings_fingerprint(base) != settings_fingerprint({**base, "extra_fields": {"a": 1, "b": 3}})


def test_an_object_store_part_is_written_per_flush_not_per_record(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    out = f"memory://manifest-{tmp_path.name}/day"
    writer = ManifestWriter(OutputFolder(out), "run", flush_records=10, flush_seconds=3600)
    writer.open()
    for index in range(25):
        writer.append(FileResult(f"/in/{index}.wav", f"/out/{index}.json", "ok").to_json())
    assert writer.written == 20 and writer.pending == 5
    writer.close()
    parts = sorted(p.name for p in ObjectStoragePath(f"{out}/{MANIFEST_FOLDER}").iterdir())
    assert len(parts) == 3 and parts[0].endswith("-000000.jsonl")
    assert len(read_manifest_state(out).last) == 25


def test_a_quiet_batch_is_flushed_by_the_timer(tmp_path: Path) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from local_kubeai.testing import wait_until

    attach("memory", fs=MemoryFileSystem())
    out = f"memory://manifest-timer-{tmp_path.name}/day"
    writer = ManifestWriter(OutputFolder(out), "run", flush_records=100, flush_seconds=0.2)
    writer.open()
    writer.append(FileResult("/in/a.wav", "/out/a.json", "ok").to_json())
    wait_until(lambda: writer.pending == 0, timeout=10)
    assert read_manifest_state(out).status("/in/a.wav") == "ok"
    writer.close()


# -- output names --------------------------------------------------------------------------------

_name_chars = st.sampled_from([*"aAbB-_.0123456789abcdef", "--", "é", "ß", "ss", "SS"])
_stems = st.lists(_name_chars, min_size=1, max_size=6).map("".join)
_uris = st.lists(
    st.tuples(st.sampled_from(["/x", "/y", "/Y", "s3://b/x"]), _stems).map(lambda t: f"{t[0]}/{t[1]}.wav"),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(_uris, st.randoms(use_true_random=False))
def test_output_names_are_unique_ignoring_case_and_independent_of_order(
    uris: list[str], shuffle: random.Random
) -> None:
    # Add files named exactly like the hashed names the others get: the crafted collisions.
    crafted = [f"/z/{name.removesuffix('.json')}.wav" for name in output_names(uris, "json") if "--" in name]
    everything = list(dict.fromkeys(uris + crafted))
    names = output_names(everything, "json")
    assert len({name.casefold() for name in names}) == len(everything)
    assert all(len(name.encode()) <= 255 for name in names)
    shuffled = everything[:]
    shuffle.shuffle(shuffled)
    by_uri = dict(zip(everything, names, strict=True))
    assert output_names(shuffled, "json") == [by_uri[uri] for uri in shuffled]


def test_a_crafted_name_does_not_take_another_files_hashed_name() -> None:
    pair = ["/x/a.wav", "/y/a.wav"]
    hashed = output_names(pair, "srt")
    crafted = f"/z/{hashed[0].removesuffix('.srt')}.wav"
    names = output_names([*pair, crafted], "srt")
    assert len(set(names)) == 3 and names[:2] == hashed


def test_many_inputs_with_one_name_get_distinct_names() -> None:
    uris = [f"s3://calls/{index}/audio.wav" for index in range(20_000)]
    names = output_names(uris, "json")
    assert len(set(names)) == len(uris)


# -- storage errors ------------------------------------------------------------------------------


def _client_error(code: str, **fields: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"{code} message", **fields}}, "GetObject")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: _client_error("InvalidObjectState", StorageClass="DEEP_ARCHIVE"),
            "archived (storage class DEEP_ARCHIVE): restore it first",
        ),
        (lambda: _client_error("InvalidObjectState"), "archived (storage class GLACIER): restore it first"),
        (lambda: _client_error("AccessDenied"), "permission denied (AccessDenied)"),
        (lambda: _client_error("NoSuchKey"), "no such object (NoSuchKey)"),
        (lambda: _client_error("Weird"), "the store refused the request (Weird: Weird message)"),
        (
            lambda: __import__("botocore.exceptions").exceptions.EndpointConnectionError(
                endpoint_url="http://s3.test"
            ),
            "the store cannot be reached (EndpointConnectionError",
        ),
        (
            lambda: __import__("botocore.exceptions").exceptions.NoCredentialsError(),
            "no credentials for the store",
        ),
        (lambda: OSError(28, "No space left on device"), "no space left on the device"),
        (lambda: PermissionError("nope"), "permission denied (nope)"),
        (lambda: FileNotFoundError("gone"), "no such file or object"),
        (lambda: RuntimeError("odd"), "RuntimeError: odd"),
    ],
)
def test_storage_errors_are_named_by_their_cause(make: object, expected: str) -> None:
    err = make()  # type: ignore[operator]
    assert expected in describe_storage_error(err, "s3://calls/a.wav")
    assert describe_storage_error(err, "s3://calls/a.wav").startswith("'s3://calls/a.wav': ")


def test_s3fs_translation_to_a_permission_error_does_not_hide_an_archived_object() -> None:
    from s3fs.errors import translate_boto_error

    translated = translate_boto_error(_client_error("InvalidObjectState", StorageClass="GLACIER"))
    assert isinstance(translated, PermissionError)
    assert "archived (storage class GLACIER): restore it first" in describe_storage_error(
        translated, "s3://b/k"
    )
