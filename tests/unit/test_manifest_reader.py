"""The manifest reader: the last line per input wins; done, failed and pending, as a function and a CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_kubeai_speech.transcription.manifest import MANIFEST_FOLDER, FileResult
from airflow_provider_kubeai_speech.transcription.progress import batch_state, main


def write_part(out: Path, name: str, results: list[FileResult]) -> None:
    folder = out / MANIFEST_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(r.to_json() + "\n" for r in results))


def batch(tmp_path: Path) -> tuple[Path, Path]:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in "abcd":
        (inputs / f"{name}.wav").write_bytes(b"RIFF")
    wav = {name: str(inputs / f"{name}.wav") for name in "abcd"}
    write_part(out, "part-20261124T010000000Z-run1-aaaa.jsonl", [
        FileResult(wav["a"], str(out / "a.json"), "ok"),
        FileResult(wav["b"], None, "failed", error="HTTP 503: busy"),
        FileResult(wav["c"], None, "failed", error="is empty (0 bytes)"),
    ])  # fmt: skip
    write_part(out, "part-20261124T020000000Z-run2-bbbb.jsonl", [
        FileResult(wav["a"], str(out / "a.json"), "skipped"),
        FileResult(wav["b"], str(out / "b.json"), "ok"),
        FileResult(wav["c"], None, "failed", error="is empty (0 bytes)"),
    ])  # fmt: skip
    return inputs, out


def test_the_last_line_per_input_wins_and_pending_needs_the_inputs(tmp_path: Path) -> None:
    inputs, out = batch(tmp_path)
    state = batch_state(str(out))
    assert (state.done, state.failed, state.pending, state.records, state.parts) == (2, 1, None, 6, 2)
    assert state.failures == [(str(inputs / "c.wav"), "is empty (0 bytes)")]
    state = batch_state(out, inputs=str(inputs / "*.wav"))
    assert (state.done, state.failed, state.pending) == (2, 1, 1)
    assert state.pending_inputs == [str(inputs / "d.wav")]
    empty = batch_state(tmp_path / "nowhere", inputs=[str(inputs)])
    assert (empty.done, empty.failed, empty.pending, empty.parts) == (0, 0, 4, 0)


def test_the_cli_prints_the_state(tmp_path: Path, capsys: object) -> None:
    inputs, out = batch(tmp_path)
    assert main(["summary", str(out), "--inputs", str(inputs)]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "6 manifest line(s) in 2 part(s); the last line per input counts" in printed
    assert "  done:    2\n  failed:  1\n  pending: 1 " in printed
    assert f"  - {inputs / 'c.wav'}: is empty (0 bytes)" in printed and f"  - {inputs / 'd.wav'}" in printed
    # Airflow's unit-test mode logs a line to stdout on import; a user's shell has no such line
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}
    run = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kubeai_speech.transcription", "summary", str(out), "--json"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert json.loads(run.stdout)["done"] == 2 and json.loads(run.stdout)["pending"] is None
