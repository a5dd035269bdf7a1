"""Messages a new user meets first: every bad field at once, an unreachable cluster in one line,
a bad ``if_no_inputs``, and what counts as "no recordings"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAIClusterError, KubeAISpeechError
from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.spec import SpeechModelSpecError
from airflow_provider_kubeai_speech.transcription.sources import count_inputs, resolve_inputs


def test_a_bad_url_and_a_bad_name_are_listed_together() -> None:
    with pytest.raises(SpeechModelSpecError) as caught:
        ServeSpeechModelOperator(task_id="serve", model_name="Bad_Name", url="s://foo", processors=0)
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["model_name", "url", "processors"]
    assert "'s://foo' has an unsupported scheme" in str(caught.value)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_api_server_is_one_line_naming_it_and_the_cause() -> None:
    from kubernetes import client

    from airflow_provider_kubeai_speech.hooks.cluster import ModelClient

    host = f"http://127.0.0.1:{closed_port()}"
    configuration = client.Configuration(host=host)
    configuration.retries = 0
    models = ModelClient(client.ApiClient(configuration), "kubeai", attempts=2)
    with pytest.raises(KubeAIClusterError) as caught:
        models.scale("whisper", 0)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300, message
    assert f"cannot reach the Kubernetes API server at {host}" in message
    assert "Connection refused" in message and "MaxRetryError" not in message
    assert caught.value.__cause__ is not None  # the urllib3 error stays attached for debugging


def test_if_no_inputs_is_checked_at_construction() -> None:
    with pytest.raises(
        KubeAISpeechError, match=r"if_no_inputs='ignore' is not one of 'fail', 'skip', 'succeed'"
    ):
        InvokeSpeechOperator(task_id="t", model_name="whisper", audio="/data", if_no_inputs="ignore")  # type: ignore[arg-type]
    with pytest.raises(KubeAISpeechError, match=r"audio=\[\] is empty"):
        InvokeSpeechOperator(task_id="t", model_name="whisper", audio=[])
    InvokeSpeechOperator(task_id="t", model_name="whisper", audio=[], if_no_inputs="skip")


def test_count_inputs_and_the_missing_folder_message(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "day" / "b.mp3").write_bytes(b"ID3")
    assert count_inputs(str(tmp_path / "day")) == 2
    assert count_inputs(str(tmp_path / "empty")) == 0
    assert count_inputs(str(tmp_path / "day" / "*.flac")) == 0
    assert count_inputs([]) == 0
    missing = str(tmp_path / "2026-11-24")
    assert count_inputs(missing) == 1  # the transcription would fail and say why
    assert count_inputs(missing, missing_is_empty=True) == 0
    assert count_inputs(str(tmp_path / "gone.wav"), missing_is_empty=True) == 1  # a file is not a folder
    (problem,) = [item.problem for item in resolve_inputs(missing)]
    assert problem == f"the folder {missing!r} does not exist (no such file or folder)"
