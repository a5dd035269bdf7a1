"""InvokeSpeechOperator's arguments: refused at construction, or after rendering for templated values,
naming the field, the value and the fix, before any cluster or storage call (issue 14, item 19)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator

BASE: dict[str, Any] = {
    "task_id": "t",
    "model_name": "whisper",
    "audio": "/data/a.wav",
    "output_path": "/out",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_failed": float("nan")}, "max_failed=nan is not a finite number. Fix: a count"),
        ({"max_failed": float("inf")}, "max_failed=inf is not a finite number"),
        ({"output_path": ""}, "output_path='' is empty"),
        ({"max_concurrency": float("inf")}, "max_concurrency=inf is not a finite number"),
        ({"temperature": float("-inf")}, "temperature=-inf is not a finite number"),
        ({"chunk_seconds": float("inf")}, "chunk_seconds=inf is not a finite number"),
        ({"progress_interval": -1}, "progress_interval=-1 must be above 0"),
        ({"model_name": "whisper-nl\n"}, "model_name: 'whisper-nl\\n' is not a valid Model name"),
        ({"output_conn_id": 3}, "output_conn_id=3 is not a connection id"),
    ],
)
def test_refused_at_construction(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(KubeAISpeechError) as err:
        InvokeSpeechOperator(**{**BASE, **changes})
    assert message in str(err.value)
    assert "Fix:" in str(err.value)


def test_templated_values_are_checked_after_rendering_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op = InvokeSpeechOperator(
        **{**BASE, "max_failed": "{{ params.max_failed }}", "output_path": "{{ params.out }}"}  # type: ignore[arg-type]
    )
    calls: list[str] = []
    monkeypatch.setattr(op, "hook_for", lambda *a: calls.append("hook"))
    monkeypatch.setattr(
        "airflow_provider_kubeai_speech.transcription.sources.resolve_inputs",
        lambda *a: calls.append("storage"),
    )
    op.max_failed, op.output_path = "nan", "/out"  # what rendering gave
    with pytest.raises(KubeAISpeechError, match=r"max_failed='nan' is not a finite number\. Fix:"):
        op.execute({"run_id": "r"})  # type: ignore[arg-type]
    op.max_failed, op.output_path = 0, ""
    with pytest.raises(KubeAISpeechError, match=r"output_path='' is empty"):
        op.execute({"run_id": "r"})  # type: ignore[arg-type]
    assert calls == []


def test_valid_values_pass() -> None:
    op = InvokeSpeechOperator(
        **{**BASE, "max_failed": 0.05, "max_concurrency": "8", "temperature": 0.2, "chunk_seconds": 300}
    )
    checked = op._check_arguments()
    InvokeSpeechOperator(**{**BASE, "model_name": "whisper-nl_legal"})  # <model>_<adapter>
    assert (checked.max_failed, checked.max_concurrency) == (0.05, 8)
