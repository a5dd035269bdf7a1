"""KubeAISpeechHook against the sandbox: real HTTP, the real kubernetes clients, real multipart."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_kubeai_speech.exceptions import (
    KubeAIClusterError,
    KubeAIEndpointError,
    KubeAISpeechError,
    ModelDeletedError,
    ModelNotFoundError,
    ReadinessTimeoutError,
)
from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.spec import build_speech_model_spec
from local_kubeai import Sandbox
from local_kubeai.engines import fake_transcript_text
from local_kubeai.testing import wait_until

AUDIO = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
CLIP = AUDIO / "call-001.wav"
FAST_RETRY = RetrySettings(max_attempts=5, backoff_factor=0.01, backoff_max=0.05, backoff_jitter=0.01)


def spec(name: str, **params: Any) -> Any:
    return build_speech_model_spec({"model_name": name, "url": "hf://Systran/faster-whisper-tiny", **params})


def hook(**kwargs: Any) -> KubeAISpeechHook:
    return KubeAISpeechHook(retry=kwargs.pop("retry", FAST_RETRY), **kwargs)


def stats(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.stats.snapshot()


def served(sandbox: Sandbox, name: str = "whisper", **params: Any) -> KubeAISpeechHook:
    h = hook()
    h.apply_model(spec(name, replicas=1, **params))
    h.wait_for_ready(name, timeout=30)
    return h


# -- cluster side ------------------------------------------------------------------------------


def test_apply_is_idempotent_and_updates(kubeai_sandbox: Sandbox) -> None:
    h = hook()
    first = h.apply_model(spec("idem", replicas=1), labels={"airflow-dag-id": "nightly"})
    assert first["metadata"]["labels"] == {"airflow-dag-id": "nightly"}
    again = h.apply_model(spec("idem", replicas=1), labels={"airflow-dag-id": "nightly"})
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert len(kubeai_sandbox.store.keys()) == 1
    updated = h.apply_model(spec("idem", replicas=2, args=["--beam-size", "1"]))
    assert updated["spec"]["replicas"] == 2 and updated["spec"]["args"] == ["--beam-size", "1"]
    assert updated["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert "labels" not in updated["metadata"]  # what the last apply no longer says is removed
    managers = {(m["manager"], m["operation"]) for m in updated["metadata"]["managedFields"]}
    assert ("airflow-kubeai-speech", "Apply") in managers


def test_apply_a_raw_manifest(kubeai_sandbox: Sandbox) -> None:
    manifest = spec("raw").to_manifest("kubeai")
    assert hook().apply_model(manifest)["metadata"]["name"] == "raw"


def test_immutable_changes_are_explained(kubeai_sandbox: Sandbox) -> None:
    h = hook()
    h.apply_model(spec("cached", cache_profile="std"))
    with pytest.raises(
        KubeAISpeechError,
        match=r"cache_profile: cannot change from 'std' to 'fast'.*DeleteSpeechModelOperator",
    ):
        h.apply_model(spec("cached", cache_profile="fast"))


def test_get_find_list_status_scale_delete(kubeai_sandbox: Sandbox) -> None:
    h = hook()
    assert h.find_model("nope") is None
    with pytest.raises(ModelNotFoundError, match="'nope' does not exist in namespace 'kubeai'"):
        h.get_model("nope")
    h.apply_model(spec("life", replicas=1, scaling={"min_replicas": 1}), labels={"team": "asr"})
    assert [m["metadata"]["name"] for m in h.list_model_resources("team=asr")] == ["life"]
    status = h.wait_for_ready("life", 1, timeout=30)
    assert (status.ready_replicas, status.desired_replicas, status.cache_loaded) == (1, 1, None)
    scaled = h.scale_model("life", 0)  # minReplicas 1 is lowered too, or the autoscaler would undo it
    assert (scaled["spec"]["replicas"], scaled["spec"]["minReplicas"]) == (0, 0)
    wait_until(lambda: h.model_status("life").all_replicas == 0)
    assert h.delete_model("life", wait=True) is True
    assert h.delete_model("life") is False
    with pytest.raises(ModelNotFoundError):
        h.delete_model("life", ignore_not_found=False)


def test_wait_for_ready_uses_a_watch_not_polling(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=2.0)
    h = hook()
    h.apply_model(spec("watched", replicas=1))
    before = dict(stats(sandbox)["kube_requests"])
    seen: list[int] = []
    status = h.wait_for_ready(
        "watched", timeout=30, on_status=lambda s: seen.append(s.ready_replicas if s else -1)
    )
    after = stats(sandbox)["kube_requests"]
    assert status.ready_replicas == 1 and seen[-1] == 1
    requests_made = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert (
        requests_made.get("list", 0) == 1 and requests_made.get("watch", 0) == 1
    )  # one read, one watch, for a 2 s wait


def test_wait_survives_dropped_watches_and_410(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=2.0, seed=7)
    sandbox.faults.update({"watch_max_seconds": 0.3, "watch_gone_rate": 0.5})
    h = hook()
    h.apply_model(spec("bumpy", replicas=1))
    assert h.wait_for_ready("bumpy", timeout=30).ready_replicas == 1
    assert stats(sandbox)["kube_requests"]["watch"] >= 3


def test_wait_timeout_and_deletion(make_kubeai_sandbox: Any) -> None:
    make_kubeai_sandbox(startup_delay=60)
    h = hook()
    h.apply_model(spec("slow", replicas=1))
    with pytest.raises(
        ReadinessTimeoutError, match=r"not ready within 0.5 s: 0/1 ready replicas \(1 pods\)"
    ) as err:
        h.wait_for_ready("slow", timeout=0.5)
    assert err.value.ready_replicas == 0
    threading.Timer(0.3, lambda: h.delete_model("slow")).start()
    with pytest.raises(ModelDeletedError):
        h.wait_for_ready("slow", timeout=10)
    with pytest.raises(ModelDeletedError):
        h.wait_for_ready("never-created", timeout=1)


def test_wait_missing_ok_waits_for_creation(kubeai_sandbox: Sandbox) -> None:
    h = hook()
    threading.Timer(0.3, lambda: hook().apply_model(spec("later", replicas=1))).start()
    assert h.wait_for_ready("later", timeout=20, missing_ok=True).ready_replicas == 1


def test_transient_cluster_errors_are_retried(kubeai_sandbox: Sandbox) -> None:
    kubeai_sandbox.faults.update(
        {"kube_status_rates": {"500": 0.3, "429": 0.2}, "kube_conflict_rate": 0.2, "retry_after": 0}
    )
    kubeai_sandbox.faults._random.seed(3)
    h = hook()
    for i in range(5):
        h.apply_model(spec(f"flaky-{i}", replicas=0))
    assert len(h.list_model_resources()) == 5
    assert sum(v for k, v in stats(kubeai_sandbox)["kube_requests"].items()) > 6


def test_cluster_errors_carry_the_api_message(kubeai_sandbox: Sandbox) -> None:
    with pytest.raises(
        KubeAIClusterError,
        match=r'403 Forbidden: .*cannot list resource "models".*namespace "elsewhere".*Fix: grant',
    ) as err:
        hook(namespace="elsewhere").list_model_resources()
    assert err.value.status == 403


async def test_async_twins(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=1.0)
    sandbox.faults.update({"watch_max_seconds": 0.3})
    h = hook()
    assert await h.async_find_model("asyncy") is None
    h.apply_model(spec("asyncy", replicas=1))
    status = await h.async_wait_for_ready("asyncy", timeout=20)
    assert status.ready_replicas == 1 and stats(sandbox)["kube_requests"]["watch"] >= 2
    assert (await h.async_model_status("asyncy")).ready_replicas == 1
    assert await h.async_delete_model("asyncy") is True
    with pytest.raises(ModelDeletedError):
        await h.async_wait_for_ready("asyncy", timeout=2)
    with pytest.raises(ReadinessTimeoutError):
        await h.async_wait_for_ready("asyncy", timeout=0.5, missing_ok=True)


# -- endpoint side ----------------------------------------------------------------------------


def test_transcribe_every_format(kubeai_sandbox: Sandbox) -> None:
    h = served(kubeai_sandbox)
    expected = fake_transcript_text(CLIP.read_bytes())
    result = h.transcribe("whisper", CLIP)
    assert (result.text, result.attempts, result.data) == (expected, 1, {"text": expected})
    assert result.bytes_sent > CLIP.stat().st_size
    verbose = h.transcribe(
        "whisper",
        str(CLIP),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert verbose.data and verbose.data["words"] and verbose.data["language"] == "en"
    assert h.transcribe("whisper", CLIP.read_bytes(), response_format="text").text == expected
    assert re.match(
        r"1\n00:00:0\d,\d{3} --> ",
        h.transcribe("whisper", lambda: CLIP.open("rb"), response_format="srt").text,
    )
    assert h.transcribe("whisper", f"file://{CLIP}", response_format="vtt").text.startswith("WEBVTT")
    from airflow.sdk import ObjectStoragePath

    assert h.transcribe("whisper", ObjectStoragePath(f"file://{CLIP}")).text == expected
    assert [m["id"] for m in h.list_served_models()] == ["whisper"]


def test_retries_on_503_with_retry_after_and_dropped_connections(kubeai_sandbox: Sandbox) -> None:
    served(kubeai_sandbox)
    kubeai_sandbox.faults.update({"status_rates": {"503": 1.0}, "retry_after": 1})
    started = time.monotonic()
    with pytest.raises(KubeAIEndpointError, match="HTTP 503 after retries") as err:
        hook(retry=RetrySettings(max_attempts=2, backoff_factor=0.01)).transcribe("whisper", CLIP)
    assert err.value.retryable and time.monotonic() - started >= 1.0  # Retry-After honoured
    kubeai_sandbox.faults.update({"status_rates": {}, "drop_rate": 0.6})
    kubeai_sandbox.faults._random.seed(11)
    kubeai_sandbox.stats.reset()
    patient = hook(retry=RetrySettings(max_attempts=12, backoff_factor=0.01, backoff_max=0.05))
    results = [patient.transcribe("whisper", CLIP) for _ in range(5)]
    assert all(r.text == results[0].text for r in results)
    outcomes = stats(kubeai_sandbox)["outcomes"]
    assert outcomes["200"] == 5 and outcomes["dropped"] == sum(r.attempts for r in results) - 5 > 0


def test_no_retry_on_4xx(kubeai_sandbox: Sandbox) -> None:
    h = served(kubeai_sandbox)
    kubeai_sandbox.stats.reset()
    with pytest.raises(ModelNotFoundError, match="KubeAI has no model 'ghost'"):
        h.transcribe("ghost", CLIP)
    response = h.invoke("whisper", data={"response_format": "json"})  # no file: 400
    assert response.status_code == 400
    assert stats(kubeai_sandbox)["outcomes"] == {"404": 1, "400": 1}


def test_invoke_defaults_to_post_transcriptions(kubeai_sandbox: Sandbox) -> None:
    h = served(kubeai_sandbox)
    with CLIP.open("rb") as handle:
        response = h.invoke("whisper", files={"file": ("call.wav", handle, "audio/wav")})
    assert response.status_code == 200 and response.json() == {
        "text": fake_transcript_text(CLIP.read_bytes())
    }
    assert (
        h.invoke("whisper", "GET", "models", params={"feature": "SpeechToText"}).json()["data"][0]["id"]
        == "whisper"
    )
    with pytest.raises(KubeAISpeechError, match="must not be sent as GET"):
        h.invoke("whisper", "GET", files={"file": b"x"})


def test_invoke_retries_rewind_uploaded_files(kubeai_sandbox: Sandbox) -> None:
    h = served(kubeai_sandbox)
    kubeai_sandbox.faults.update({"drop_rate": 0.5})
    kubeai_sandbox.faults._random.seed(5)
    with CLIP.open("rb") as handle:
        response = h.invoke("whisper", files={"file": ("call.wav", handle, "audio/wav")})
    assert response.json() == {"text": fake_transcript_text(CLIP.read_bytes())}


def test_malformed_answers_are_reported(kubeai_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from local_kubeai import openai_api

    h = served(kubeai_sandbox)
    monkeypatch.setattr(
        openai_api.KubeAIHandler,
        "_answer",
        lambda self, *a: self.send_bytes(200, b"<html>gateway page</html>", "text/html"),
    )
    with pytest.raises(
        KubeAIEndpointError, match=r"expected JSON \(json\) but got text/html: <html>gateway page</html>"
    ):
        h.transcribe("whisper", CLIP)
    monkeypatch.setattr(
        openai_api.KubeAIHandler, "_answer", lambda self, *a: self.send_json(200, {"txt": "x"})
    )
    with pytest.raises(KubeAIEndpointError, match="has no 'text' string"):
        h.transcribe("whisper", CLIP)


def test_tls_verification(make_kubeai_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = make_kubeai_sandbox(tls=True, startup_delay=0.1)
    h = hook()  # the connection carries the sandbox CA as ca_bundle
    h.apply_model(spec("secure", replicas=1))
    h.wait_for_ready("secure", timeout=20)
    assert h.transcribe("secure", CLIP).attempts == 1
    conn = json.loads(os.environ["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])
    del conn["extra"]["ca_bundle"]
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))
    with pytest.raises(
        KubeAIEndpointError,
        match=r"TLS verification of https://.* failed: .*CERTIFICATE_VERIFY_FAILED.*Fix: put the CA",
    ):
        hook().transcribe("secure", CLIP)  # not retried: a certificate problem is not transient
    assert sandbox.stats.snapshot()["transcriptions"] == 1


def test_test_connection_reports_each_side(kubeai_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook().test_connection()
    assert ok and "Kubernetes API: ok" in message and "KubeAI endpoint: ok" in message
    conn = json.loads(os.environ["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])
    conn["extra"]["namespace"] = "forbidden"
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))
    ok, message = hook().test_connection()
    assert not ok and "Kubernetes API: failed" in message and "KubeAI endpoint: ok" in message
    conn["host"], conn["extra"]["namespace"] = "http://127.0.0.1:9", "kubeai"
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))
    ok, message = hook(retry=RetrySettings(max_attempts=1)).test_connection()
    assert not ok and "Kubernetes API: ok" in message and "KubeAI endpoint: failed" in message


def test_the_gateway_token_is_sent_and_never_leaks(
    make_kubeai_sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-7f3a9c-never-print-me"
    sandbox = make_kubeai_sandbox(gateway_token=token, startup_delay=0.1)
    caplog.set_level(logging.DEBUG)
    h = served(sandbox)
    assert h.transcribe("whisper", CLIP).attempts == 1
    sandbox.faults.update({"status_rates": {"503": 1.0}})
    with pytest.raises(KubeAIEndpointError) as err:
        hook(retry=RetrySettings(max_attempts=2, backoff_factor=0.01)).transcribe("whisper", CLIP)
    assert token not in str(err.value) and token not in repr(h.config) and token not in repr(h.endpoint)
    assert token not in caplog.text
    sandbox.config.gateway_token = "rotated"
    with pytest.raises(KubeAIEndpointError, match=r"HTTP 401.*bearer token") as err:
        h.transcribe("whisper", CLIP)
    assert token not in str(err.value)


@pytest.mark.slow
def test_upload_memory_stays_flat(kubeai_sandbox: Sandbox, tmp_path: Path) -> None:
    """A 400 MiB upload through the hook, in a child process whose peak RSS is measured."""
    served(kubeai_sandbox, "big")
    big = tmp_path / "big.wav"
    with big.open("wb") as handle:
        handle.write(CLIP.read_bytes()[:44])
        block = os.urandom(1 << 20)
        for _ in range(400):
            handle.write(block)
    script = (
        "import resource, sys\n"
        "from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook\n"
        "h = KubeAISpeechHook()\n"
        "h.endpoint.session\n"  # imports done before the baseline
        "import requests_toolbelt\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = h.transcribe('big', sys.argv[1])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) // 1024, r.bytes_sent)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(big)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
        check=True,
    )
    growth_mib, sent = map(int, out.stdout.strip().splitlines()[-1].split())
    assert sent > 400 * (1 << 20)
    assert growth_mib < 64, f"peak RSS grew by {growth_mib} MiB for a 400 MiB upload"
    assert (
        requests.get(f"{kubeai_sandbox.kubeai_url}/sandbox/stats", timeout=5).json()["bytes_received"] >= sent
    )
