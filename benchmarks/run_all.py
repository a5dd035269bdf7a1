"""`make bench`: run every benchmark in its own process, then print and record a summary table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "throughput",
    "memory",
    "readiness",
    "parse_cost",
    "long_recording",
    "object_storage",
    "deployment",
    "real_whisper",
    "shards_dag_test",  # SHARD_FILES=100000 for the 100k figure; default 20000
    "scale",  # SCALE_SIZES=2000,20000,100000 for the 100k row (a few minutes); default 2000,20000
)


def machine() -> str:
    memory = ""
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f", {kib / 1024 / 1024:.0f} GiB memory"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores{memory}, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def main() -> int:
    only = sys.argv[1:] or list(BENCHMARKS)
    started = time.monotonic()
    failed = []
    for name in only:
        print(f"\n== {name} ==", flush=True)
        code = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py")],
            cwd=HERE.parent,
            env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
        ).returncode
        if code:
            failed.append(name)
    rows = []
    for name in BENCHMARKS:
        path = HERE / ".results" / f"{name}.json"
        if path.exists():
            rows.extend({"benchmark": name, **row} for row in json.loads(path.read_text()))
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; this run ({', '.join(only)}) took {time.monotonic() - started:.0f} s "
        "(rows of benchmarks not in it come from their last run).",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - benchmark",
        "     - figure",
        "     - value",
        "     - target",
        "     - note",
    ]
    for row in rows:
        target = row.get("target", "")
        if row.get("ok") is not None:
            target = f"{target} ({'met' if row['ok'] else 'missed'})"
        lines += [
            f"   * - {row['benchmark']}",
            f"     - {row['metric']}",
            f"     - {row['value']} {row.get('unit', '')}".rstrip(),
            f"     - {target}",
            f"     - {row.get('note', '')}",
        ]
    lines += [
        "",
        "Commands: ``make bench`` (all), or ``.venv/bin/python benchmarks/run_all.py throughput``.",
        "",
    ]
    (HERE / "RESULTS.rst").write_text("\n".join(lines))
    print("\nSummary")
    for row in rows:
        flag = "" if row.get("ok") is None else (" ok" if row["ok"] else " MISSED")
        print(
            f"  {row['benchmark']:<11} {row['metric']:<75} {str(row['value']) + ' ' + row.get('unit', ''):>16}  {row.get('target', '')}{flag}"
        )
    print(f"\nWritten to {HERE / 'RESULTS.rst'} (included by docs/performance.rst)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
