"""Cost growth of one batch from 2k to 100k tiny files: wall time, client CPU per file, peak RSS,
XCom and manifest size, a rerun that skips everything, and listing the inputs.

The sandbox's fake engine answers at once (no latency) in its own process, 4 replicas x 8 at a
time, so the server is not the limit. Each run is a fresh child process that builds the batch as
the operator does and reports its own CPU time (user + system) and peak RSS (``VmHWM``). Files are 0.2 s
WAVs, one distinct copy each (the inputs are told apart by path; hard links of one file would be
deduplicated as one recording by ``resolve_inputs``, which identifies local files by inode).

Sizes: ``SCALE_SIZES`` (default ``2000,20000``; ``make bench`` keeps that); ``SCALE_SIZES=2000,20000,100000``
for the full table, a few minutes on two cores. ``SCALE_S3_OBJECTS=100000`` adds the listing of an
S3 prefix of that many objects in moto's server (creating them takes minutes; only the listing is
timed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import make_wav, record, sandbox_process, serve

CONCURRENCY = 16

CHILD = r"""
import json, logging, os, resource, sys, time
folder, output = sys.argv[1], sys.argv[2]
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.speech import TranscriptionRequest
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
log = logging.getLogger("scale")
lines = []
class Count(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
log.addHandler(Count()); log.setLevel(logging.INFO); log.propagate = False
hook = KubeAISpeechHook(pool_size=max(4, int(sys.argv[3])))
hook.endpoint.session
def peak_mib():
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
cpu0, wall0 = cpu(), time.monotonic()
inputs = resolve_inputs(folder)
listed = time.monotonic() - wall0
batch = BatchTranscriber(hook.endpoint, TranscriptionRequest("whisper", response_format="text"),
                         BatchOptions(max_concurrency=int(sys.argv[3]), progress_interval=5.0),
                         OutputFolder(output), log, run_id="bench")
summary = batch.run(inputs)
wall = time.monotonic() - wall0
xcom = summary.to_xcom()
parts = os.path.join(output, "_transcriptions")
print(json.dumps({
    "files": len(inputs), "ok": xcom["succeeded"], "skipped": xcom["skipped"], "failed": xcom["failed"],
    "wall": wall, "list": listed, "cpu": cpu() - cpu0, "maxrss_mib": peak_mib(),
    "xcom_bytes": len(json.dumps(xcom)), "log_lines": len(lines),
    "manifest_bytes": sum(os.path.getsize(os.path.join(parts, n)) for n in os.listdir(parts)),
}))
"""


def tiny_wavs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    template = make_wav(folder / "template.wav", 0.2, 0).read_bytes()
    os.unlink(folder / "template.wav")
    for i in range(count):
        (folder / f"call-{i:06d}.wav").write_bytes(template[:-4] + i.to_bytes(4, "little"))


def run_child(env: dict[str, str], folder: Path, output: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(output), str(CONCURRENCY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def s3_listing(objects: int) -> list[dict[str, Any]]:
    """``resolve_inputs`` of an S3 prefix of ``objects`` tiny WAVs in moto's server (own process)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.s3_server import MotoProcess, apply_environment, aws_environment, direct_client

    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-scale-s3-"))
    moto = MotoProcess()
    try:
        apply_environment(aws_environment(moto.url, str(work)))
        client = direct_client(moto.url)
        client.create_bucket(Bucket="calls")
        body = make_wav(work / "t.wav", 0.2, 0).read_bytes()
        with ThreadPoolExecutor(16) as pool:  # the setup, not measured
            list(
                pool.map(
                    lambda i: client.put_object(Bucket="calls", Key=f"day/c-{i:06d}.wav", Body=body),
                    range(objects),
                )
            )
        moto.clear_traffic()
        from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs

        started = time.monotonic()
        inputs = resolve_inputs("s3://calls/day/")
        seconds = time.monotonic() - started
        requests = moto.traffic().get("requests", 0)
        assert len(inputs) == objects and all(i.problem is None for i in inputs), len(inputs)
    finally:
        moto.stop()
    return [{"metric": f"resolve_inputs of a {objects}-object S3 prefix (moto)", "value": round(seconds, 2),
             "unit": "s", "note": f"{requests} requests to moto" if requests else ""}]  # fmt: skip


def main() -> None:
    sizes = [int(s) for s in os.environ.get("SCALE_SIZES", "2000,20000").split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-scale-"))
    sandbox = sandbox_process("--startup-delay", "0.1", "--replica-concurrency", "8")
    runs: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    try:
        env = {**os.environ, **sandbox.connections()}
        os.environ.update(sandbox.connections())
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        serve(KubeAISpeechHook(), "whisper", replicas=4)
        for size in sizes:
            folder = work / f"in-{size}"
            started = time.monotonic()
            tiny_wavs(folder, size)
            print(f"  {size} files written in {time.monotonic() - started:.0f} s", flush=True)
            first = run_child(env, folder, work / f"out-{size}")
            again = run_child(env, folder, work / f"out-{size}")
            assert first["ok"] == size and again["skipped"] == size, (first, again)
            runs[size] = (first, again)
            print(f"  {size}: {first}\n  {size} rerun: {again}", flush=True)
    finally:
        sandbox.stop()
    rows: list[dict[str, Any]] = []
    small, large = min(runs), max(runs)
    for size, (first, again) in sorted(runs.items()):
        rows += [
            {"metric": f"{size} files: wall time", "value": round(first["wall"], 1), "unit": "s",
             "note": f"{size / first['wall']:.0f} files/s; listing {first['list']:.2f} s; {first['log_lines']} log lines"},
            {"metric": f"{size} files: client CPU per file", "value": round(1000 * first["cpu"] / size, 2), "unit": "ms"},
            {"metric": f"{size} files: peak RSS", "value": round(first["maxrss_mib"], 1), "unit": "MiB"},
            {"metric": f"{size} files: XCom return value", "value": first["xcom_bytes"], "unit": "bytes",
             "target": "< 65536", "ok": first["xcom_bytes"] < 65536},
            {"metric": f"{size} files: manifest", "value": round(first["manifest_bytes"] / 2**20, 2), "unit": "MiB",
             "note": "after the rerun (its skip records included)"},
            {"metric": f"{size} files: rerun, all skipped", "value": round(again["wall"], 1), "unit": "s",
             "target": "< 60" if size >= 100_000 else "", "ok": again["wall"] < 60 if size >= 100_000 else None,
             "note": f"CPU {again['cpu']:.1f} s, peak RSS {again['maxrss_mib']:.0f} MiB"},
        ]  # fmt: skip
    if large != small:
        ratio = (runs[large][0]["cpu"] / large) / (runs[small][0]["cpu"] / small)
        growth = runs[large][0]["maxrss_mib"] - runs[small][0]["maxrss_mib"]
        rows += [
            {"metric": f"CPU per file, {large} vs {small}", "value": round(ratio, 2), "unit": "x",
             "target": "<= 1.3", "ok": ratio <= 1.3},
            {"metric": f"peak RSS growth, {small} -> {large}", "value": round(growth, 1), "unit": "MiB",
             "target": "< 150", "ok": growth < 150},
        ]  # fmt: skip
    s3_objects = int(os.environ.get("SCALE_S3_OBJECTS", "0"))
    if s3_objects:
        rows += s3_listing(s3_objects)
    print(__doc__.strip().splitlines()[0])
    record("scale", rows)


if __name__ == "__main__":
    main()
