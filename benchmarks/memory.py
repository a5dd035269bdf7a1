"""Client memory while uploading one huge WAV: the hook's streamed upload beside requests.post(files=...).

Each upload runs in a fresh child process that reports its peak RSS growth (ru_maxrss) over a
baseline taken after imports; the sandbox runs in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from common import record, sandbox_process, serve

SIZES_MIB = (256, 1024)

CHILD = r"""
import os, resource, sys
mode, path = sys.argv[1], sys.argv[2]
import requests, requests_toolbelt
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
hook = KubeAISpeechHook()
hook.endpoint.session
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "hook":
    hook.transcribe("whisper", path, response_format="text")
else:
    with open(path, "rb") as handle:
        r = requests.post(hook.base_url + "/audio/transcriptions", files={"file": ("big.wav", handle, "audio/wav")}, data={"model": "whisper", "response_format": "text"}, timeout=600)
    r.raise_for_status()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def big_wav(path: Path, mib: int) -> Path:
    block = os.urandom(1 << 20)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        for _ in range(mib):
            wav.writeframesraw(block)
    return path


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kubeai-bench-memory-"))
    sandbox = sandbox_process("--startup-delay", "0.1")
    rows = []
    try:
        env = {**os.environ, **sandbox.connections()}
        os.environ.update(sandbox.connections())
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        serve(KubeAISpeechHook(), "whisper", replicas=1)
        for mib in SIZES_MIB:
            path = big_wav(work / f"big-{mib}.wav", mib)
            growth = {}
            for mode in ("hook", "requests"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, mode, str(path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=True,
                )
                growth[mode] = float(out.stdout.strip().splitlines()[-1])
            path.unlink()
            rows.append(
                {
                    "metric": f"{mib} MiB upload: hook peak RSS growth",
                    "value": round(growth["hook"], 1),
                    "unit": "MiB",
                    "target": "<= 64",
                    "ok": growth["hook"] <= 64,
                }
            )
            rows.append(
                {
                    "metric": f"{mib} MiB upload: requests.post(files=...) peak RSS growth",
                    "value": round(growth["requests"], 1),
                    "unit": "MiB",
                }
            )
    finally:
        sandbox.stop()
    print(__doc__.strip().splitlines()[0])
    record("memory", rows)


if __name__ == "__main__":
    main()
