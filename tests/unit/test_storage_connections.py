"""Which connection reaches a storage URI (the URI's own, the operator's, the scheme's default)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_kubeai_speech.transcription.storage import (
    StorageConnectionError,
    conn_id_in_uri,
    plain_uri,
    resolve_conn_id,
    storage_path,
)


@pytest.fixture
def aws_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
    )


def test_conn_id_in_uri() -> None:
    assert conn_id_in_uri("s3://aws_prod@calls/a.wav") == "aws_prod"
    assert conn_id_in_uri("s3://calls/a.wav") is None
    assert conn_id_in_uri("/local/a.wav") is None


def test_uri_connection_wins_and_a_contradiction_is_named() -> None:
    assert resolve_conn_id("s3://prod@calls/a.wav", None) == "prod"
    assert resolve_conn_id("s3://prod@calls/a.wav", "prod") == "prod"
    with pytest.raises(StorageConnectionError, match=r"audio_conn_id='other'.*Fix"):
        resolve_conn_id("s3://prod@calls/a.wav", "other", field="audio_conn_id")


def test_explicit_connection_is_used() -> None:
    assert resolve_conn_id("s3://calls/a.wav", "aws_nightly") == "aws_nightly"


def test_s3_defaults_to_aws_default_when_it_exists(aws_default: None) -> None:
    assert resolve_conn_id("s3://calls/a.wav", None) == "aws_default"
    path = storage_path("s3://calls/2026/a.wav")
    assert path.conn_id == "aws_default"
    assert plain_uri(path) == "s3://calls/2026/a.wav"


def test_without_the_default_connection_the_credential_chain_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", raising=False)
    assert resolve_conn_id("s3://calls/a.wav", None) is None
    assert resolve_conn_id("gs://calls/a.wav", None) is None
    assert resolve_conn_id("memory://calls/a.wav", None) is None


def test_gs_defaults_to_google_cloud_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform"})
    )
    assert resolve_conn_id("gs://calls/a.wav", None) == "google_cloud_default"
