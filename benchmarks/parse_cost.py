"""DAG-parse cost: importing every operator and sensor, against importing only ``airflow.sdk``.

``python -X importtime`` in fresh processes, median of 10 runs each.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from common import record

RUNS = 10
BASE = "import airflow.sdk"
FULL = (
    "import airflow.sdk\n"
    "from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator\n"
    "from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator\n"
    "from airflow_provider_kubeai_speech.operators.teardown import DeleteSpeechModelOperator, ScaleSpeechModelOperator\n"
    "from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor\n"
    "import sys\n"
    "heavy = [m for m in ('kubernetes', 'kubernetes_asyncio', 'requests_toolbelt', 'requests', 'pocketsphinx') if m in sys.modules]\n"
    "print('HEAVY', ','.join(heavy))\n"
)


def import_microseconds(code: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    selves = [
        line.split("|")[0].split(":")[1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:")
    ]
    total = sum(int(value) for value in selves if value.isdigit())  # self times add up to the whole
    heavy = next(
        (
            line.split(" ", 1)[1] if " " in line else ""
            for line in out.stdout.splitlines()
            if line.startswith("HEAVY")
        ),
        "",
    )
    return total, heavy


def main() -> None:
    base = [import_microseconds(BASE)[0] for _ in range(RUNS)]
    full_runs = [import_microseconds(FULL) for _ in range(RUNS)]
    added_ms = (statistics.median(t for t, _ in full_runs) - statistics.median(base)) / 1000
    heavy = full_runs[0][1]
    rows = [
        {
            "metric": "import time of airflow.sdk alone (median)",
            "value": round(statistics.median(base) / 1000, 1),
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
            "value": heavy or "none",
            "target": "none",
            "ok": not heavy,
        },
    ]
    print(__doc__.strip().splitlines()[0])
    record("parse_cost", rows)


if __name__ == "__main__":
    main()
