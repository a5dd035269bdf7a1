"""One batch in one task beside the same files in 8 mapped shards, both under dag.test() against the
sandbox's fake engine without latency (same concurrency against the Model: dag.test() runs one task
at a time, each with max_concurrency=16). ``SHARD_FILES`` files (default 20000)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import airflow_home, record, sandbox_process, serve
from scale import tiny_wavs


def main() -> None:
    files = int(os.environ.get("SHARD_FILES", "20000"))
    airflow_home()
    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-shards-"))
    tiny_wavs(work / "in", files)
    sandbox = sandbox_process("--startup-delay", "0.1", "--replica-concurrency", "8")
    seconds: dict[str, float] = {}
    try:
        os.environ.update(sandbox.connections())
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils.db import resetdb

        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
        from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_state

        serve(KubeAISpeechHook(), "whisper", replicas=4)
        resetdb()
        bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        for dag_id in ("bench_one_task", "bench_8_shards"):
            output = work / f"out-{dag_id}"
            started = time.monotonic()
            run = bag.dags[dag_id].test(run_conf={"audio": str(work / "in"), "output": str(output)})
            seconds[dag_id] = time.monotonic() - started
            assert str(run.state) == "success", run.state
            state = read_manifest_state(output)
            assert len(state.last) == files and {r["status"] for r in state.last.values()} == {"ok"}
    finally:
        sandbox.stop()
    one, sharded = seconds["bench_one_task"], seconds["bench_8_shards"]
    rows = [
        {"metric": f"{files} files, one task (dag.test)", "value": round(one, 1), "unit": "s"},
        {"metric": f"{files} files, 8 shards (dag.test, one at a time)", "value": round(sharded, 1), "unit": "s"},
        {"metric": "8 shards / one task", "value": round(sharded / one, 2), "unit": "x"},
        {"metric": "overhead per extra task", "value": round((sharded - one) / 7, 2), "unit": "s",
         "note": "each shard lists all inputs, reads the manifest and starts a task"},
    ]  # fmt: skip
    print(__doc__.strip().splitlines()[0])
    record("shards_dag_test", rows)


if __name__ == "__main__":
    main()
