"""Client memory while uploading one huge WAV: the hook's streamed upload beside requests.post(files=...).

Each upload runs in a fresh child process that samples its resident memory every 5 ms during the
upload and reports the peak over the value just before it; the sandbox runs in its own process.
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
import os, sys, threading, time
mode, path = sys.argv[1], sys.argv[2]
import requests, requests_toolbelt
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
hook = KubeAISpeechHook()
hook.endpoint.session
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * page
peak = [0]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)
before = rss()
sampler = threading.Thread(target=sample)
sampler.start()
if mode == "hook":
    hook.transcribe("whisper", path, response_format="text")
else:
    with open(path, "rb") as handle:
        r = requests.post(hook.base_url + "/audio/transcriptions", files={"file": ("big.wav", handle, "audio/wav")}, data={"model": "whisper", "response_format": "text"}, timeout=600)
    r.raise_for_status()
done.set()
sampler.join()
print((max(peak[0], rss()) - before) / 2**20)
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
