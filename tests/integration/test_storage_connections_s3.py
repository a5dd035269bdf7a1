"""Storage connections against a real S3 API (moto's server on loopback): ``audio_conn_id`` and
``output_conn_id`` reach the buckets, ``aws_default`` is used when neither the URI nor the operator
names a connection, and nothing depends on the connection id appearing in the URI (issue 15, item 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import check_input, resolve_inputs

moto_server = pytest.importorskip("moto.server")
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 200


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_connection(endpoint: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing-key",
            "password": "testing-secret",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )


@pytest.fixture
def buckets(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    import boto3
    from airflow.sdk.io import store

    # Airflow keeps one filesystem per (scheme, connection) per process; other tests made some
    # for connections of the same names pointing elsewhere.
    for alias in [a for a in store._STORE_CACHE if a.startswith("s3")]:
        monkeypatch.delitem(store._STORE_CACHE, alias)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata look-up off CI
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret",
        region_name="us-east-1",
    )
    suffix = request.node.name.replace("_", "-")[-30:].strip("-").lower()
    calls, transcripts = f"calls-{suffix}", f"transcripts-{suffix}"
    for bucket in (calls, transcripts):
        client.create_bucket(Bucket=bucket)
    for key in ("2026-11-24/a.wav", "2026-11-24/b.wav", "2026-11-24/notes.txt", "2026-11-25/c.wav"):
        client.put_object(Bucket=calls, Key=key, Body=WAV)
    return client, calls, transcripts


def test_audio_conn_id_reaches_the_bucket(
    buckets: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, calls, _ = buckets
    monkeypatch.setenv("AIRFLOW_CONN_CALLS_STORE", aws_connection(s3_endpoint))
    found = resolve_inputs(f"s3://{calls}/2026-11-24/*.wav", "calls_store")
    assert [(i.uri, i.size, i.problem) for i in found] == [
        (f"s3://{calls}/2026-11-24/a.wav", len(WAV), None),
        (f"s3://{calls}/2026-11-24/b.wav", len(WAV), None),
    ]
    assert {i.path.conn_id for i in found} == {"calls_store"}
    assert all(check_input(i).problem is None for i in found)
    folder = resolve_inputs(f"s3://{calls}/2026-11-24", "calls_store")
    assert [i.name for i in folder] == ["a.wav", "b.wav"]  # audio only


def test_output_conn_id_reaches_the_bucket(
    buckets: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, transcripts = buckets
    monkeypatch.setenv("AIRFLOW_CONN_TRANSCRIPTS_STORE", aws_connection(s3_endpoint))
    out = OutputFolder(f"s3://{transcripts}/2026-11-24", conn_id="transcripts_store")
    assert out.remote.conn_id == "transcripts_store"
    out.write("a.json", '{"text": "hello"}')
    body = client.get_object(Bucket=transcripts, Key="2026-11-24/a.json")["Body"].read()
    assert body == b'{"text": "hello"}'


def test_the_readme_uris_work_with_aws_default(
    buckets: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, calls, transcripts = buckets
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(s3_endpoint))
    found = resolve_inputs(f"s3://{calls}/2026-11-24/*.wav")  # no conn id anywhere
    assert [i.uri for i in found] == [f"s3://{calls}/2026-11-24/a.wav", f"s3://{calls}/2026-11-24/b.wav"]
    assert all(check_input(i).problem is None for i in found)
    OutputFolder(f"s3://{transcripts}/2026-11-24").write("b.srt", "1\n")
    assert client.get_object(Bucket=transcripts, Key="2026-11-24/b.srt")["Body"].read() == b"1\n"


def test_the_uri_connection_still_wins(
    buckets: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, calls, _ = buckets
    monkeypatch.setenv("AIRFLOW_CONN_PROD", aws_connection(s3_endpoint))
    (found,) = resolve_inputs(f"s3://prod@{calls}/2026-11-25/c.wav")
    assert (found.uri, found.problem, found.path.conn_id) == (f"s3://{calls}/2026-11-25/c.wav", None, "prod")


def test_an_object_storage_path_keeps_its_own_connection(
    buckets: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import ObjectStoragePath

    _, calls, _ = buckets
    monkeypatch.setenv("AIRFLOW_CONN_CALLS_STORE", aws_connection(s3_endpoint))
    monkeypatch.setenv("AIRFLOW_CONN_ELSEWHERE", aws_connection("http://127.0.0.1:9"))
    given = ObjectStoragePath(f"s3://{calls}/2026-11-24", conn_id="calls_store")
    found = resolve_inputs([given, given / "a.wav"], "elsewhere")
    assert [(i.name, i.problem, i.path.conn_id) for i in found] == [
        ("a.wav", None, "calls_store"),
        ("b.wav", None, "calls_store"),
    ]
