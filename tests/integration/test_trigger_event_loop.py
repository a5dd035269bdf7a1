"""Issue 17, points 4 and 5: the trigger imports nothing on the event loop; the resumed sensor
reads the event, not the cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from unittest import mock

from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor

RUN_TRIGGER = """
import asyncio, json, os, sys, threading
from local_kubeai import Sandbox, SandboxConfig
from airflow_provider_kubeai_speech.spec import build_speech_model_spec

sandbox = Sandbox(SandboxConfig(startup_delay=0.5)).start()
os.environ.update(sandbox.airflow_connections())
spec = build_speech_model_spec({"model_name": "w", "url": "hf://a/b", "replicas": 1})
sandbox.store.create("kubeai", spec.to_manifest("kubeai"), "t")

import airflow.triggers.base  # what a triggerer has loaded before any trigger
import time
t0 = time.perf_counter()
from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger  # the triggerer's import
module_import = time.perf_counter() - t0

imported = []
loop_thread = []

def audit(event, args):
    if event == "import" and threading.get_ident() in loop_thread and args[0] not in sys.modules:
        imported.append(args[0])

sys.addaudithook(audit)

lags = []

async def ticker():
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - t - 0.01)

async def main():
    loop_thread.append(threading.get_ident())
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    events = [e.payload async for e in SpeechModelReadyTrigger("w", timeout=30).run()]
    tick.cancel()
    return events

events = asyncio.run(main())
print("RESULT:" + json.dumps({
    "events": events, "imported": sorted(set(imported)), "max_lag": max(lags), "module_import": module_import,
}))
sandbox.stop()
"""


def test_trigger_run_imports_nothing_on_the_event_loop() -> None:
    out = subprocess.run(
        [sys.executable, "-c", RUN_TRIGGER], capture_output=True, text=True, timeout=180, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT:")]
    assert lines, out.stderr[-3000:]
    result = json.loads(lines[0].removeprefix("RESULT:"))
    assert result["events"][0]["status"] == "success", result
    # airflow.sdk's logging and connection cache are loaded by any real triggerer before a trigger
    # runs; what the trigger itself needs (the Kubernetes clients, the cncf hook, this provider)
    # must all be in by the trigger module's import.
    ours = ("kubernetes", "kubernetes_asyncio", "aiohttp", "airflow_provider_kubeai_speech")
    heavy = [m for m in result["imported"] if m.split(".")[0] in ours or m.startswith("airflow.providers")]
    assert heavy == [], heavy
    assert result["module_import"] < 0.5  # the triggerer's own import of the module stays light
    print(f"event loop: longest stall {result['max_lag'] * 1000:.0f} ms while the clients loaded")


def test_resumed_sensor_uses_the_event_payload() -> None:
    sensor = SpeechModelReadySensor(task_id="w", model_name="w", min_ready_replicas=1)
    status = {"name": "w", "namespace": "kubeai", "ready_replicas": 2, "all_replicas": 2}
    event: dict[str, Any] = {"status": "success", "message": "ready", "name": "w", "ready_replicas": 2}
    with mock.patch.object(SpeechModelReadySensor, "hook") as hook:
        assert sensor.execute_complete({}, {**event, "model_status": status}) == status  # type: ignore[arg-type]
        assert sensor.execute_complete({}, event)["ready_replicas"] == 2  # type: ignore[arg-type]
    assert hook.mock_calls == []  # no cluster read, no client import
