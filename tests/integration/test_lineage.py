"""OpenLineage events of InvokeSpeechOperator, as the openlineage provider emits them (file transport),
from a DAG run with dag.test(): each recording as an input, the output folder as the output, and on
failure what was done (issue 15, item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_kubeai.testing import wait_until
from tests.audio_files import make_wavs
from tests.dag_runner import start_dag_in_child
from tests.integration.conftest import model_manifest

pytest.importorskip("airflow.providers.openlineage")

NS = "kubeai"
WAV_MAGIC = b"RIFF\x24\x00\x00\x00WAVEfmt "


def serve(sandbox: Any) -> None:
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "test")
    wait_until(
        lambda: (sandbox.store.get(NS, "whisper").get("status") or {}).get("replicas", {}).get("ready") == 1
    )


def events_of(log: Path, conf: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The task's OpenLineage events from a DAG run in a child process (the transport is read at
    start-up, so the child gets it in its environment)."""
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(log), "append": True}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "test")
    child = start_dag_in_child("test_invoke", conf)
    assert child.wait(timeout=180) == 0
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if e.get("job", {}).get("name") == "test_invoke.transcribe"]


def datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(side, [])]


def test_lineage_names_each_recording_and_the_output_folder(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    serve(sandbox)
    files = make_wavs(tmp_path / "in" / "2026-11-24", 3)
    run_dag(
        "test_invoke", audio=[str(files[0])], output=str(tmp_path / "warm")
    )  # the database exists for the child
    out = tmp_path / "out" / "2026-11-24"
    events = events_of(
        tmp_path / "ol.jsonl",
        {"audio": str(tmp_path / "in" / "**" / "*.wav"), "output": str(out)},
        monkeypatch,
    )
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    assert len(complete) == 1, [e["eventType"] for e in events]
    assert sorted(datasets(complete[0], "inputs")) == sorted(("file", str(f)) for f in files)
    assert datasets(complete[0], "outputs") == [("file", str(out))]


def test_a_failed_run_reports_what_it_did(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    serve(sandbox)
    files = make_wavs(tmp_path / "in", 3)
    out = tmp_path / "out"
    run_dag("test_invoke", audio=[str(files[0])], output=str(out))  # one transcript already there
    corrupt = tmp_path / "in" / "corrupt.wav"
    corrupt.write_bytes(WAV_MAGIC + b"\x00" * 8)  # passes the check, refused by the server (HTTP 400)
    events = events_of(
        tmp_path / "ol.jsonl", {"audio": str(tmp_path / "in"), "output": str(out)}, monkeypatch
    )
    failed = [e for e in events if e["eventType"] == "FAIL"]
    assert len(failed) == 1, [e["eventType"] for e in events]
    assert sorted(datasets(failed[0], "inputs")) == sorted(("file", str(f)) for f in files)
    assert datasets(failed[0], "outputs") == [("file", str(out))]
