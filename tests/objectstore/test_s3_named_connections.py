"""InvokeSpeechOperator with templated ``audio_conn_id`` / ``output_conn_id`` naming two storage
connections (no ``aws_default`` at all), each reaching moto through its own proxy: the inputs are
read through the one, the transcripts written through the other."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_kubeai.engines import fake_transcript_text
from tests.audio_files import make_wavs
from tests.objectstore.conftest import S3
from tests.s3_server import TcpProxy, aws_connection

pytestmark = pytest.mark.slow

DAG_CODE = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator

    with DAG(
        "s3_named_connections",
        schedule=None,
        start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
        params={"audio": "", "output": "", "audio_conn": "", "output_conn": ""},
    ):
        InvokeSpeechOperator(
            task_id="transcribe",
            model_name="whisper",
            audio="{{ params.audio }}",
            output_path="{{ params.output }}",
            audio_conn_id="{{ params.audio_conn }}",
            output_conn_id="{{ params.output_conn }}",
            response_format="text",
        )
    """
)


@pytest.fixture
def named_connections_dag() -> Iterator[Any]:
    from airflow.dag_processing.dagbag import DagBag

    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "s3_named_connections.py"
    path.write_text(DAG_CODE)
    try:
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        yield bag.dags["s3_named_connections"]
    finally:
        path.unlink()


def test_audio_and_output_connections_are_named_by_templated_parameters(
    s3: S3,
    whisper: Any,
    airflow_db: None,
    named_connections_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    s3.create_bucket("calls", "transcripts")
    wavs = make_wavs(tmp_path / "wavs", 3)
    for wav in wavs:
        s3.put(f"s3://calls/in/{wav.name}", wav.read_bytes())
    writes = TcpProxy(s3.server.get_host_and_port())
    try:
        monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_CALLS", aws_connection(s3.proxy.url))
        monkeypatch.setenv("AIRFLOW_CONN_AWS_TRANSCRIPTS", aws_connection(writes.url))
        run = named_connections_dag.test(
            run_conf={
                "audio": "s3://calls/in/*.wav",
                "output": "s3://transcripts/out",
                "audio_conn": "aws_calls",
                "output_conn": "aws_transcripts",
            }
        )
        assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        for wav in wavs:
            text = s3.get(f"s3://transcripts/out/{wav.stem}.txt").decode()
            assert text.strip() == fake_transcript_text(wav.read_bytes())
        uploaded = sum(wav.stat().st_size for wav in wavs)
        assert s3.proxy.bytes_down >= uploaded  # the recordings came through the audio connection
        assert writes.bytes_up > 0 and writes.bytes_down < uploaded  # the transcripts went out the other
        assert whisper.stats.snapshot()["outcomes"] == {"200": 3}
    finally:
        writes.close()
