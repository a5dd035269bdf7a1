"""The sandbox's KubeAI endpoint over real HTTP with real multipart: engines, formats, scaling, faults, TLS."""

from __future__ import annotations

import json
import re
import signal
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local_kubeai import Sandbox
from local_kubeai.engines import fake_transcript_text
from local_kubeai.testing import SandboxProcess, wait_until
from scripts.demo import word_error_rate
from tests.integration.conftest import model_manifest

AUDIO = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
NS = "kubeai"


def serve(sandbox: Sandbox, name: str, **params: Any) -> None:
    sandbox.store.create(NS, model_manifest(name, **params), "test")


def ready(sandbox: Sandbox, name: str, count: int = 1) -> None:
    wait_until(
        lambda: (sandbox.store.get(NS, name).get("status") or {}).get("replicas", {}).get("ready", 0) >= count
    )


def transcribe(
    sandbox: Sandbox, model: str, path: Path, timeout: float = 30, **fields: str
) -> requests.Response:
    with path.open("rb") as handle:
        return requests.post(
            f"{sandbox.kubeai_url}/openai/v1/audio/transcriptions",
            files={"file": (path.name, handle, "audio/wav")},
            data={"model": model, **fields},
            timeout=timeout,
        )


def test_fake_engine_is_deterministic_and_formats_match_kubeai(kubeai_sandbox: Sandbox) -> None:
    serve(kubeai_sandbox, "fake", replicas=1)
    ready(kubeai_sandbox, "fake")
    clip = AUDIO / "call-001.wav"
    expected = fake_transcript_text(clip.read_bytes())
    assert transcribe(kubeai_sandbox, "fake", clip).json() == {"text": expected}
    assert transcribe(kubeai_sandbox, "fake", clip).json() == {"text": expected}
    text = transcribe(kubeai_sandbox, "fake", clip, response_format="text")
    assert text.text == expected and text.headers["Content-Type"].startswith("text/plain")
    srt = transcribe(kubeai_sandbox, "fake", clip, response_format="srt").text
    # cues start at the first sound; the server keeps the segment's leading space
    assert re.match(r"1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n \w", srt)
    vtt = transcribe(kubeai_sandbox, "fake", clip, response_format="vtt")
    assert re.match(r"WEBVTT\n\n00:00:0\d\.\d{3} --> ", vtt.text) and vtt.headers["Content-Type"].startswith(
        "text/vtt"
    )
    verbose = transcribe(
        kubeai_sandbox, "fake", clip, response_format="verbose_json", **{"timestamp_granularities[]": "word"}
    ).json()
    assert set(verbose) == {"task", "language", "duration", "text", "words", "segments"}
    assert verbose["duration"] == pytest.approx(4.29, abs=0.01)
    assert verbose["segments"][-1]["end"] <= verbose["duration"]
    assert {
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    } <= set(verbose["segments"][0])
    assert " ".join(w["word"].strip() for w in verbose["words"]) == expected
    other = transcribe(kubeai_sandbox, "fake", AUDIO / "call-002.wav").json()["text"]
    assert other != expected


def test_models_list_by_feature(kubeai_sandbox: Sandbox) -> None:
    serve(kubeai_sandbox, "listed")
    url = f"{kubeai_sandbox.kubeai_url}/openai/v1/models"
    assert requests.get(url, timeout=5).json() == {"object": "list", "data": []}  # TextGeneration by default
    data = requests.get(url, params={"feature": "SpeechToText"}, timeout=5).json()["data"]
    assert [(m["id"], m["object"], m["features"]) for m in data] == [("listed", "model", ["SpeechToText"])]


def test_errors_look_like_kubeais(kubeai_sandbox: Sandbox) -> None:
    clip = AUDIO / "call-001.wav"
    missing = transcribe(kubeai_sandbox, "nope", clip)
    assert missing.status_code == 404 and missing.json() == {"error": 'model not found: "nope"'}
    no_file = requests.post(
        f"{kubeai_sandbox.kubeai_url}/openai/v1/audio/transcriptions", data={"model": "x"}, timeout=5
    )
    assert no_file.status_code == 400
    serve(kubeai_sandbox, "errs", replicas=1)
    assert transcribe(kubeai_sandbox, "errs", clip, response_format="docx").status_code == 400
    assert (
        requests.post(f"{kubeai_sandbox.kubeai_url}/openai/v1/audio/translations", timeout=5).status_code
        == 404
    )


@pytest.mark.slow
def test_pocketsphinx_recognises_the_sample_audio(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(engine="pocketsphinx", startup_delay=0.1)
    serve(sandbox, "sphinx", replicas=1)
    ready(sandbox, "sphinx")
    rates = []
    for clip in sorted(AUDIO.glob("*.wav")):
        heard = transcribe(sandbox, "sphinx", clip).json()["text"]
        rates.append(word_error_rate(clip.with_suffix(".txt").read_text().strip(), heard))
    assert sum(rates) / len(rates) < 0.25, rates


def test_scale_from_zero_holds_the_request_until_a_replica_is_ready(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=1.0, autoscale_window=60)
    serve(sandbox, "cold", scaling={"min_replicas": 0, "max_replicas": 2})
    wait_until(lambda: sandbox.store.get(NS, "cold").get("status"))
    assert sandbox.store.get(NS, "cold")["status"]["replicas"] == {"all": 0, "ready": 0}
    started = time.monotonic()
    answer = transcribe(sandbox, "cold", AUDIO / "call-002.wav")
    waited = time.monotonic() - started
    assert answer.status_code == 200
    assert waited >= 1.0  # held while the pod started (a lower bound, not a speed target)
    model = sandbox.store.get(NS, "cold")
    assert model["spec"]["replicas"] == 1
    # the status follows the pod that answered (the controller writes it on its next pass, as
    # KubeAI's does): it may lag the answer by a moment on a loaded machine
    wait_until(lambda: sandbox.store.get(NS, "cold")["status"]["replicas"]["ready"] == 1)
    owners = {m["manager"] for m in model["metadata"]["managedFields"]}
    assert "kubeai-autoscaler" in owners


def test_idle_models_scale_down_to_min_replicas(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, autoscale_interval=0.05, autoscale_window=0.5)
    serve(sandbox, "idle", replicas=2, scaling={"min_replicas": 0, "scale_down_delay_seconds": 0})
    wait_until(lambda: sandbox.store.get(NS, "idle")["spec"]["replicas"] == 0, timeout=10)
    wait_until(lambda: sandbox.store.get(NS, "idle")["status"]["replicas"] == {"all": 0, "ready": 0})


def test_autoscaling_disabled_waits_then_504(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(host_wait_timeout=0.5)
    serve(sandbox, "frozen", replicas=0, scaling={"autoscaling_disabled": True})
    answer = transcribe(sandbox, "frozen", AUDIO / "call-002.wav")
    assert answer.status_code == 504
    assert sandbox.store.get(NS, "frozen")["spec"]["replicas"] == 0


def test_capacity_is_replicas_times_concurrency(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, replica_concurrency=2, latency_per_request=0.2)
    serve(sandbox, "busy", replicas=1, scaling={"autoscaling_disabled": True})
    ready(sandbox, "busy")
    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        codes = list(
            pool.map(lambda _: transcribe(sandbox, "busy", AUDIO / "call-003.wav").status_code, range(6))
        )
    assert codes == [200] * 6
    assert time.monotonic() - started >= 0.6  # 6 requests x 0.2 s / 2 slots: cannot be faster


def test_rollout_replaces_pods_without_losing_readiness(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3)
    serve(sandbox, "rolled", replicas=1)
    ready(sandbox, "rolled")
    before = {p["metadata"]["name"] for p in sandbox.controller.pod_objects(NS)}
    readiness: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            readiness.append(sandbox.store.get(NS, "rolled")["status"]["replicas"]["ready"])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    sandbox.store.mutate(
        NS, "rolled", lambda o: {**o, "spec": {**o["spec"], "args": ["--beam-size", "1"]}}, "test"
    )
    wait_until(
        lambda: (
            {p["metadata"]["name"] for p in sandbox.controller.pod_objects(NS)}.isdisjoint(before)
            and sandbox.store.get(NS, "rolled")["status"]["replicas"] == {"all": 1, "ready": 1}
        )
    )
    stop.set()
    sampler.join()
    assert min(readiness) >= 1 and max(sandbox.store.get(NS, "rolled")["status"]["replicas"].values()) == 1


def test_cache_profile_loads_before_pods_start(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, cache_load_delay=0.5)
    serve(sandbox, "cached", replicas=1, cache_profile="standard")
    first = wait_until(lambda: sandbox.store.get(NS, "cached").get("status"))
    assert first == {"replicas": {"all": 0, "ready": 0}, "cache": {"loaded": False}}
    wait_until(
        lambda: (
            sandbox.store.get(NS, "cached")["status"]
            == {"replicas": {"all": 1, "ready": 1}, "cache": {"loaded": True}}
        )
    )


def test_deleting_a_model_removes_its_pods_and_route(kubeai_sandbox: Sandbox) -> None:
    serve(kubeai_sandbox, "doomed", replicas=1)
    ready(kubeai_sandbox, "doomed")
    kubeai_sandbox.store.delete(NS, "doomed")
    wait_until(lambda: not kubeai_sandbox.controller.pod_objects(NS))
    assert transcribe(kubeai_sandbox, "doomed", AUDIO / "call-001.wav").status_code == 404


def test_fault_injection_and_stats(kubeai_sandbox: Sandbox) -> None:
    serve(kubeai_sandbox, "faulty", replicas=1)
    ready(kubeai_sandbox, "faulty")
    admin = f"{kubeai_sandbox.kubeai_url}/sandbox"
    requests.put(
        f"{admin}/faults", json={"status_rates": {"503": 1.0}, "retry_after": 3}, timeout=5
    ).raise_for_status()
    failed = transcribe(kubeai_sandbox, "faulty", AUDIO / "call-001.wav")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "3"
    requests.put(f"{admin}/faults", json={"status_rates": {}, "drop_rate": 1.0}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        transcribe(kubeai_sandbox, "faulty", AUDIO / "call-001.wav")
    assert requests.put(f"{admin}/faults", json={"nonsense": 1}, timeout=5).status_code == 400
    requests.delete(f"{admin}/faults", timeout=5)
    assert transcribe(kubeai_sandbox, "faulty", AUDIO / "call-001.wav").status_code == 200
    stats = requests.get(f"{admin}/stats", timeout=5).json()
    assert stats["outcomes"] == {"503": 1, "dropped": 1, "200": 1}
    assert stats["bytes_received"] > 3 * (AUDIO / "call-001.wav").stat().st_size
    assert list(stats["completed_by_digest"].values()) == [1]
    assert requests.delete(f"{admin}/stats", timeout=5).json()["transcriptions"] == 0


def test_gateway_token(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(gateway_token="s3cret")
    url = f"{sandbox.kubeai_url}/openai/v1/models"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer s3cret"}, timeout=5).status_code == 200
    assert (
        json.loads(sandbox.airflow_connections()["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])["password"]
        == "s3cret"
    )


def test_tls_needs_the_sandbox_ca(make_kubeai_sandbox: Any) -> None:
    from kubernetes import client, config

    sandbox = make_kubeai_sandbox(tls=True)
    assert sandbox.kubeai_url.startswith("https://")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.kubeai_url}/sandbox/healthz", timeout=5)
    assert requests.get(
        f"{sandbox.kubeai_url}/sandbox/healthz", verify=str(sandbox.ca_path), timeout=5
    ).json() == {"ok": True}
    api = client.CustomObjectsApi(config.new_client_from_config(str(sandbox.kubeconfig_path)))
    assert api.list_namespaced_custom_object("kubeai.org", "v1", NS, "models")["items"] == []
    assert isinstance(
        ssl.get_server_certificate(("127.0.0.1", int(sandbox.kubeai_url.rsplit(":", 1)[1]))), str
    )


def test_command_line_sandbox_starts_prints_connections_and_stops(tmp_path: Path) -> None:
    process = SandboxProcess(tmp_path / "state", "--engine", "fake", "--startup-delay", "0.1")
    try:
        info = process.info
        assert re.match(r"http://127\.0\.0\.1:\d+$", info["kubeai_url"])
        env = process.connections()
        assert set(env) == {"AIRFLOW_CONN_KUBERNETES_DEFAULT", "AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"}
        assert json.loads(env["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])["host"] == info["kubeai_url"]
        assert requests.get(f"{info['kubeai_url']}/sandbox/healthz", timeout=5).ok
    finally:
        assert process.stop(signal.SIGTERM) == 0
