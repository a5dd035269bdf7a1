"""docs/quickstart.rst's walkthrough, run as written: its shell blocks and its DAG file, in a fresh
folder outside the repository, with a fresh AIRFLOW_HOME (the repository's .venv stands in for
the walkthrough's own virtual environment, to save the install), and ``make dist``'s wheels pass
``twine check``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.rst"


def code_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(marker, caption, body)`` of every code-block; marker is the comment line before it."""
    blocks = []
    pattern = re.compile(
        r"(?:^\.\. (?P<marker>\w+)\n\n)?^\.\. code-block:: \w+\n(?:   :caption: (?P<caption>\S+)\n)?\n"
        r"(?P<body>(?:   .*\n|\n)+)",
        re.MULTILINE,
    )
    for match in pattern.finditer(text):
        body = "\n".join(line[3:] for line in match["body"].splitlines())
        blocks.append((match["marker"] or "", match["caption"] or "", body.strip() + "\n"))
    return blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_walkthrough_works_as_written(tmp_path: Path) -> None:
    blocks = code_blocks(QUICKSTART.read_text())
    shell = [body for marker, _, body in blocks if marker == "walkthrough"]
    (dag,) = [body for _, caption, body in blocks if caption == "airflow-home/dags/my_calls.py"]
    assert len(shell) == 2, "the walkthrough's blocks are marked '.. walkthrough'"
    kube, kubeai = free_port(), free_port()
    folder = tmp_path / "first-hour"
    folder.mkdir()
    dag_file = folder / "airflow-home" / "dags" / "my_calls.py"
    script = "\n".join(
        [
            "set -euo pipefail",
            f"export PATH={ROOT / '.venv' / 'bin'}:$PATH",  # instead of step 1's venv and pip install
            shell[0],
            f"cat > {dag_file} <<'EOF'\n{dag}EOF",
            shell[1],
        ]
    )
    script = script.replace("../kubeai-speech", str(ROOT)).replace("16443", str(kube))
    script = script.replace("18000", str(kubeai))
    env = {key: os.environ[key] for key in ("HOME", "LANG", "TMPDIR") if key in os.environ}
    env["PATH"] = os.environ["PATH"]  # no AIRFLOW_* of the test session
    run = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    names = sorted(p.name for p in (folder / "transcripts" / "2026-11-24").iterdir())
    assert names == [
        "_transcriptions",
        *(f"{p.stem}.txt" for p in sorted((ROOT / "example_dags/data/audio").glob("*.wav"))),
    ]
    assert "  done:    5\n  failed:  0\n  pending: 0 " in run.stdout
    assert '"transcriptions": 5' in run.stdout
    assert "No recordings to transcribe" in out and "state=success" in out
    assert (folder / "airflow-home" / "airflow.db").exists()


@pytest.mark.slow
def test_make_dist_builds_both_distributions_and_twine_passes(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run = subprocess.run(
        ["make", "dist", f"DIST={dist}"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    built = sorted(p.name for p in dist.iterdir())
    assert [re.sub(r"-[0-9][^-]*(?=-py3|\.tar)", "-V", name) for name in built] == [
        "airflow_provider_kubeai_speech-V-py3-none-any.whl",
        "airflow_provider_kubeai_speech-V.tar.gz",
        "local_kubeai-V-py3-none-any.whl",
        "local_kubeai-V.tar.gz",
    ]
    assert run.stdout.count("PASSED") == 4
    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(next(dist.glob("airflow_provider*.whl")))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        "airflow_provider_kubeai_speech/transcription/progress.py" in listing
        and "local_kubeai" not in listing
    )
