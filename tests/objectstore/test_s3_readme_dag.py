"""The README's "A DAG in 20 lines", verbatim, against the sandbox and a real S3 API (moto's server):
S3 in, S3 out, srt; then a rerun that skips everything sends no recording to KubeAI.

The DAG's code is read from README.md at test time and written into a DAGs folder of its own: the
only things the test provides are the connections (``aws_default`` pointing at moto, and the
sandbox's ``kubeai_speech_default`` / ``kubernetes_default``) and the recordings in the bucket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from local_kubeai.engines import fake_transcript_text, file_digest
from tests.dag_runner import DagResult
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import last_status

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "example_dags" / "data" / "audio"
DAY = pendulum.datetime(2026, 11, 24, tz="UTC")
pytestmark = pytest.mark.slow


def readme_dag_code() -> str:
    """The python block under the README's "A DAG in 20 lines" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A DAG in 20 lines", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md has no python block under 'A DAG in 20 lines'"
    return match.group(1)


@pytest.fixture
def readme_dag() -> Iterator[Any]:
    """The README's DAG, written into the session's temporary DAGs folder (dag.test() runs DAGs
    from the configured folder only) and removed afterwards."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "readme_nightly_calls.py"
    path.write_text(readme_dag_code())
    try:
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        yield bag.dags["nightly_calls"]
    finally:
        path.unlink()


def stats(sandbox: Any) -> dict[str, Any]:
    result: dict[str, Any] = requests.get(f"{sandbox.kubeai_url}/sandbox/stats", timeout=5).json()
    return result


def test_readme_dag_s3_in_s3_out_then_skip_rerun(
    s3: S3, make_kubeai_sandbox: Any, airflow_db: None, readme_dag: Any
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3)
    s3.create_bucket("calls", "transcripts")
    wavs = sorted(SAMPLES.glob("*.wav"))
    assert len(wavs) >= 3
    for wav in wavs:
        s3.put(f"s3://calls/{DAY:%Y-%m-%d}/{wav.name}", wav.read_bytes())
    s3.put(f"s3://calls/{DAY:%Y-%m-%d}/notes.txt", b"not a wav: the glob leaves it out")
    s3.put("s3://calls/2026-11-23/other-day.wav", wavs[0].read_bytes())

    dag = readme_dag
    run = dag.test(logical_date=DAY)
    tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", tis

    prefix = f"s3://transcripts/{DAY:%Y-%m-%d}"
    srts = [key for key in s3.keys(prefix) if key.endswith(".srt")]
    assert srts == sorted(f"{wav.stem}.srt" for wav in wavs)
    for wav in wavs:
        srt = s3.get(f"{prefix}/{wav.stem}.srt").decode()
        assert re.match(r"1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n", srt), srt
        assert fake_transcript_text(wav.read_bytes()) in " ".join(srt.split())
    first = stats(sandbox)
    digests = {file_digest(wav) for wav in wavs}
    assert all(first["completed_by_digest"].get(d) == 1 for d in digests), first
    inputs = {f"s3://calls/{DAY:%Y-%m-%d}/{wav.name}" for wav in wavs}
    assert last_status(prefix) == dict.fromkeys(inputs, "ok")  # the manifest, through its reader
    summary = DagResult(run).xcom("transcribe")
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (len(wavs), len(wavs), 0)
    model = sandbox.store.get("kubeai", "whisper-small-en")
    assert model["spec"]["replicas"] == 0  # the teardown scaled it to zero

    again = dag.test(logical_date=DAY.add(seconds=1))  # a rerun of the same day's inputs
    assert str(again.state) == "success"
    second = stats(sandbox)
    assert {d: second["completed_by_digest"].get(d) for d in digests} == dict.fromkeys(digests, 1), (
        "a recording was sent again although its transcript exists"
    )
    # The only request of the rerun is the serve task's warm-up clip.
    assert second["transcriptions"] - first["transcriptions"] == 1
    assert [key for key in s3.keys(prefix) if key.endswith(".srt")] == srts
    assert DagResult(again).xcom("transcribe")["skipped"] == len(wavs)
    assert last_status(prefix) == dict.fromkeys(inputs, "skipped")


LINEAGE_CHILD = """
import pendulum
from tests.dag_runner import load_dag
run = load_dag("nightly_calls").test(logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"))
raise SystemExit(0 if str(run.state) == "success" else 1)
"""


def test_readme_dag_lineage_names_s3_datasets_without_the_connection(
    s3: S3,
    make_kubeai_sandbox: Any,
    airflow_db: None,
    readme_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenLineage (the openlineage provider, file transport) names each recording by its bucket
    and key and the output folder itself, with no connection id in any name (issue 15, item 6)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("airflow.providers.openlineage")
    make_kubeai_sandbox(startup_delay=0.2)
    s3.create_bucket("calls", "transcripts")
    wavs = sorted(SAMPLES.glob("*.wav"))[:2]
    for wav in wavs:
        s3.put(f"s3://calls/{DAY:%Y-%m-%d}/{wav.name}", wav.read_bytes())
    log = tmp_path / "lineage.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(log), "append": True}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "test")
    child = subprocess.run(
        [sys.executable, "-c", LINEAGE_CHILD], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert child.returncode == 0, child.stderr[-3000:]
    events = [
        event
        for event in map(json.loads, log.read_text().splitlines())
        if event.get("job", {}).get("name") == "nightly_calls.transcribe"
    ]
    (complete,) = [e for e in events if e["eventType"] == "COMPLETE"]
    inputs = sorted((d["namespace"], d["name"]) for d in complete["inputs"])
    assert inputs == sorted(("s3://calls", f"{DAY:%Y-%m-%d}/{wav.name}") for wav in wavs)
    outputs = [(d["namespace"], d["name"]) for d in complete["outputs"]]
    assert outputs == [("s3://transcripts", f"{DAY:%Y-%m-%d}")]
    assert "aws_default" not in json.dumps(
        [e.get("inputs") for e in events] + [e.get("outputs") for e in events]
    )


def test_readme_block_is_what_the_test_runs() -> None:
    """The extraction finds the README's DAG, not an empty or partial block."""
    code = readme_dag_code()
    assert 'audio="s3://calls/" + DAY + "/*.wav"' in code
    assert 'output_path="s3://transcripts/" + DAY' in code
    assert "dag_run.logical_date or dag_run.run_after" in code and "max_active_runs=1" in code
    assert 'response_format="srt"' in code
    assert "aws_default" not in code and "endpoint" not in code  # connections come from the environment
