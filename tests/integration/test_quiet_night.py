"""A night without recordings: the example DAG serves nothing, and InvokeSpeechOperator's
``if_no_inputs`` decides what an empty batch does; a missing folder says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException

from airflow_provider_kubeai_speech.exceptions import BatchFailed
from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from tests.audio_files import make_wavs

DAY = "2026-11-24"


@pytest.mark.parametrize("day_folder", ["empty", "missing"])
def test_the_example_dag_serves_nothing_on_a_quiet_night(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path, day_folder: str
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    if day_folder == "empty":
        (tmp_path / "calls" / DAY).mkdir(parents=True)
        (tmp_path / "calls" / DAY / "notes.txt").write_text("not a recording")
    result = run_dag(
        "kubeai_batch_transcription",
        logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"),
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert result.state == "success", result.tis
    assert result.task_state("recordings_found") == "success"
    for task_id in ("serve_model", "wait_until_ready", "transcribe_day", "scale_to_zero"):
        assert result.task_state(task_id) == "skipped", task_id
    events, _ = sandbox.store.watch_from(0)
    assert events == []  # no Model was ever created, so none was scaled up
    assert not (tmp_path / "out").exists()


def invoke(tmp_path: Path, audio: Any, **kwargs: Any) -> InvokeSpeechOperator:
    return InvokeSpeechOperator(
        task_id="transcribe", model_name="whisper", audio=audio, output_path=str(tmp_path / "out"), **kwargs
    )


def test_if_no_inputs_skip_succeed_and_fail(kubeai_sandbox: Any, tmp_path: Path) -> None:
    empty = tmp_path / "in"
    empty.mkdir()
    context: Any = {"run_id": "manual__1"}
    with pytest.raises(AirflowSkipException, match=r"holds no audio files.*if_no_inputs='skip'"):
        invoke(tmp_path, str(empty), if_no_inputs="skip").execute(context)
    with pytest.raises(AirflowSkipException, match="matches no file"):
        invoke(tmp_path, str(empty / "*.wav"), if_no_inputs="skip").execute(context)
    summary = invoke(tmp_path, [], if_no_inputs="succeed").execute(context)
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (0, 0, 0, 0)
    assert summary["output_uri"] == str(tmp_path / "out") and summary["manifest_uri"] is None
    with pytest.raises(BatchFailed, match="holds no audio files"):
        invoke(tmp_path, str(empty)).execute(context)
    assert kubeai_sandbox.stats.snapshot()["transcriptions"] == 0
    assert not (tmp_path / "out").exists()  # nothing to write, no folder made


def test_if_no_inputs_does_not_hide_a_missing_folder_or_a_partly_empty_batch(
    kubeai_sandbox: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "calls" / DAY
    with pytest.raises(BatchFailed) as caught:
        invoke(tmp_path, str(missing), if_no_inputs="succeed").execute({"run_id": "manual__1"})
    message = str(caught.value)
    assert f"the folder {str(missing)!r} does not exist" in message
    assert "max_failed" not in message.split("\n")[0].split("nothing was sent to KubeAI.")[1]
    # one good input beside an empty folder: the empty folder is a failure, as before
    good = make_wavs(tmp_path / "good", 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchFailed, match="Fix the inputs or raise max_failed"):
        invoke(tmp_path, [str(good[0]), str(tmp_path / "empty")], if_no_inputs="skip").execute(
            {"run_id": "manual__1"}
        )
