"""DAG-parse cost: what importing every operator and sensor adds once ``airflow.sdk`` is loaded.

Each run is a fresh process that imports ``airflow.sdk`` (as every DAG file does), then times
the provider's imports alone; median of 10 runs. It also lists heavy modules those imports load.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from common import record

RUNS = 10
CODE = (
    "import sys, time\n"
    "import airflow.sdk\n"
    "started = time.perf_counter()\n"
    "from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator\n"
    "from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator\n"
    "from airflow_provider_kubeai_speech.operators.teardown import DeleteSpeechModelOperator, ScaleSpeechModelOperator\n"
    "from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor\n"
    "added = time.perf_counter() - started\n"
    "heavy = [m for m in ('kubernetes', 'kubernetes_asyncio', 'requests_toolbelt', 'requests', 'pocketsphinx', 'av', 'numpy') if m in sys.modules]\n"
    "print(added, ','.join(heavy))\n"
)
BASE = "import time; started = time.perf_counter(); import airflow.sdk; print(time.perf_counter() - started)"


def run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].split(" ")


def main() -> None:
    base = [float(run(BASE)[0]) for _ in range(RUNS)]
    runs = [run(CODE) for _ in range(RUNS)]
    added_ms = statistics.median(float(r[0]) for r in runs) * 1000
    heavy = sorted({name for r in runs for name in (r[1].split(",") if len(r) > 1 and r[1] else [])})
    rows = [
        {
            "metric": "import of airflow.sdk alone (median, what every DAG file pays)",
            "value": round(statistics.median(base) * 1000, 1),
            "unit": "ms",
        },
        {
            "metric": "added by importing every operator and sensor (median)",
            "value": round(added_ms, 1),
            "unit": "ms",
            "target": "<= 50",
            "ok": added_ms <= 50,
        },
        {
            "metric": "heavy modules imported at parse time",
            "value": ",".join(heavy) or "none",
            "target": "none",
            "ok": not heavy,
        },
    ]
    print(__doc__.strip().splitlines()[0])
    record("parse_cost", rows)


if __name__ == "__main__":
    main()
