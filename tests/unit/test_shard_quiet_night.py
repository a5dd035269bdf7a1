"""A quiet night is judged on the whole listing, before sharding: an empty folder skips every
shard, while a shard that the hash gives none of a non-empty folder succeeds with zero."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.exceptions import AirflowSkipException

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.transcription.shards import in_shard
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs


def shard_op(folder: Path, out: Path, index: int, count: int) -> InvokeSpeechOperator:
    return InvokeSpeechOperator(
        task_id=f"t{index}",
        model_name="whisper",
        audio=str(folder),
        output_path=str(out),
        if_no_inputs="skip",
        shard_index=index,
        shard_count=count,
    )


def test_an_empty_folder_skips_each_shard(tmp_path: Path) -> None:
    (tmp_path / "day").mkdir()
    for index in range(3):
        with pytest.raises(AirflowSkipException):
            shard_op(tmp_path / "day", tmp_path / "out", index, 3).execute({"run_id": "r"})


def test_a_shard_given_no_file_of_a_busy_night_succeeds_with_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an endpoint nobody listens on: an empty shard sends nothing
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", '{"conn_type": "kubeai_speech", "host": "http://127.0.0.1:9"}'
    )
    day = tmp_path / "day"
    day.mkdir()
    (day / "call-1.wav").write_bytes(b"RIFF")
    (taken,) = resolve_inputs(str(day))
    empty = next(k for k in range(4) if not list(in_shard([taken], k, 4)))
    summary = shard_op(day, tmp_path / "out", empty, 4).execute({"run_id": "r"})
    assert summary["total"] == 0 and summary["failed"] == 0
