"""Importing the operators and sensor (what a DAG file does) loads no heavy client library."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.teardown import DeleteSpeechModelOperator, ScaleSpeechModelOperator
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor
print("HEAVY:" + ",".join(m for m in ("kubernetes", "kubernetes_asyncio", "requests_toolbelt", "requests", "pocketsphinx", "celpy", "airflow.triggers.base", "av", "numpy") if m in sys.modules))
"""


def test_no_heavy_imports_at_dag_parse_time() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120
    )
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("HEAVY:")]
    assert line == "HEAVY:"
