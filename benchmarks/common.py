"""Shared pieces of the benchmarks: a sandbox in its own process, audio files, result records."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / ".results"
sys.path.insert(0, str(ROOT))


def one_second_wavs(folder: Path, count: int) -> list[Path]:
    """``count`` distinct one-second WAVs (32 KB each): the tone of file 0, with a per-file sample."""
    folder.mkdir(parents=True, exist_ok=True)
    template = make_wav(folder / "template.wav", 1.0, 0).read_bytes()
    os.unlink(folder / "template.wav")
    paths = []
    for i in range(count):
        path = folder / f"call-{i:05d}.wav"
        path.write_bytes(template[:-4] + i.to_bytes(4, "little"))
        paths.append(path)
    return paths


def make_wav(path: Path, seconds: float, seed: int) -> Path:
    from tests.audio_files import make_wav as make

    return make(path, seconds, seed=seed)


def sandbox_process(*args: str) -> Any:
    from local_kubeai.testing import SandboxProcess

    return SandboxProcess(Path(tempfile.mkdtemp(prefix="kubeai-bench-")), *args)


def serve(hook: Any, name: str, replicas: int) -> None:
    from airflow_provider_kubeai_speech.spec import build_speech_model_spec

    hook.apply_model(
        build_speech_model_spec(
            {
                "model_name": name,
                "url": "hf://Systran/faster-whisper-small",
                "replicas": replicas,
                "scaling": {"min_replicas": replicas},
            }
        )
    )
    hook.wait_for_ready(name, replicas, timeout=60)


def record(name: str, rows: list[dict[str, Any]]) -> None:
    """Save a benchmark's rows (metric, value, unit, target, ok, note) for the summary."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2))
    for row in rows:
        status = "" if row.get("ok") is None else ("  [target met]" if row["ok"] else "  [TARGET MISSED]")
        print(
            f"  {row['metric']}: {row['value']} {row.get('unit', '')}  (target {row.get('target', '-')}){status}"
        )


def airflow_home() -> None:
    home = Path(tempfile.mkdtemp(prefix="kubeai-bench-airflow-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "benchmarks" / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
