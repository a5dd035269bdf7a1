"""OpenLineage names for inputs and outputs: namespace and key of the location, never a connection id,
each recording itself (not its folder), the output folder itself (issue 15, item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator, _Lineage, output_dataset
from airflow_provider_kubeai_speech.transcription.batch import BatchSummary
from airflow_provider_kubeai_speech.transcription.manifest import FileResult
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import AudioInput, resolve_inputs


@pytest.fixture
def aws_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
    )


def remote_input(uri: str, conn_id: str | None = None) -> AudioInput:
    from airflow_provider_kubeai_speech.transcription.storage import plain_uri, storage_path

    path = storage_path(uri, conn_id)
    return AudioInput(plain_uri(path), path.name, path=path)


def test_remote_names_carry_no_connection_id(aws_default: None) -> None:
    item = remote_input("s3://calls/2026-11-24/a.wav")
    assert item.path.conn_id == "aws_default"
    assert item.uri == "s3://calls/2026-11-24/a.wav"
    assert item.dataset == ("s3://calls", "2026-11-24/a.wav")
    assert remote_input("s3://aws_prod@calls/x/b.wav").dataset == ("s3://calls", "x/b.wav")
    out = OutputFolder("s3://transcripts/2026-11-24/run", conn_id="aws_prod")
    assert output_dataset(out) == ("s3://transcripts", "2026-11-24/run")  # the folder, not its parent
    assert output_dataset(OutputFolder("s3://transcripts")) == ("s3://transcripts", "/")


def test_local_names_are_file_and_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    (item,) = resolve_inputs("a.wav")
    assert item.dataset == ("file", str(tmp_path / "a.wav"))
    assert output_dataset(OutputFolder("out")) == ("file", str(tmp_path / "out"))


def lineage_of(op: InvokeSpeechOperator, failed: bool = False) -> Any:
    return (
        op.get_openlineage_facets_on_failure(None) if failed else op.get_openlineage_facets_on_complete(None)
    )


def test_inputs_are_the_recordings_and_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    monkeypatch.setenv("AIRFLOW__LINEAGE__MAX_ASSETS_PER_COLLECTOR", "3")
    inputs = [AudioInput(str(tmp_path / "calls" / f"c{i}.wav"), f"c{i}.wav") for i in range(5)]
    op = InvokeSpeechOperator(task_id="t", model_name="m", audio=str(tmp_path))
    op._lineage = _Lineage(inputs, OutputFolder(str(tmp_path / "out")))
    op._lineage.summary = BatchSummary(results=[FileResult(i.uri, None, "ok") for i in inputs])
    lineage = lineage_of(op)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("file", str(tmp_path / "calls" / f"c{i}.wav")) for i in range(3)
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(tmp_path / "out"))]


def test_a_failed_run_reports_what_it_did(tmp_path: Path) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    inputs = [AudioInput(str(tmp_path / f"c{i}.wav"), f"c{i}.wav") for i in range(3)]
    op = InvokeSpeechOperator(task_id="t", model_name="m", audio=str(tmp_path))
    op._lineage = _Lineage(inputs, OutputFolder(str(tmp_path / "out")))
    op._lineage.summary = BatchSummary(
        results=[
            FileResult(inputs[0].uri, "x", "ok"),
            FileResult(inputs[1].uri, None, "failed", error="HTTP 500"),
            FileResult(inputs[2].uri, "y", "skipped"),
        ]
    )
    lineage = lineage_of(op, failed=True)
    assert [d.name for d in lineage.inputs] == [inputs[0].uri, inputs[2].uri]
    assert [d.name for d in lineage.outputs] == [str(tmp_path / "out")]


def test_asset_outlets_use_plain_uris() -> None:
    from airflow.sdk import Asset

    from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError

    with pytest.raises(KubeAISpeechError, match=r"Fix: Asset\('s3://transcripts/'\)"):
        InvokeSpeechOperator(
            task_id="t", model_name="m", audio="/a.wav", outlets=[Asset("s3://aws_default@transcripts")]
        )
    InvokeSpeechOperator(task_id="t", model_name="m", audio="/a.wav", outlets=[Asset("s3://transcripts")])


def test_listed_objects_are_named_like_their_paths() -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    attach("memory", fs=fs)
    fs.pipe("/lineage-calls/2026/a.wav", b"RIFF")
    (listed,) = resolve_inputs("memory://lineage-calls/2026/*.wav")
    (single,) = resolve_inputs("memory://lineage-calls/2026/a.wav")
    path = ObjectStoragePath("memory://lineage-calls/2026/a.wav")
    assert listed.uri == single.uri == "memory://lineage-calls/2026/a.wav"
    assert (
        listed.dataset
        == single.dataset
        == (path.namespace, path.key)
        == ("memory://lineage-calls", "2026/a.wav")
    )
    fs.rm("/lineage-calls", recursive=True)
