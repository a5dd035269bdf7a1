"""Reading the kubeai_speech connection (pure: no I/O)."""

from __future__ import annotations

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.connection import KubeAIConnectionConfig, base_url_of


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (
            "http://kubeai.kubeai.svc.cluster.local",
            None,
            None,
            "http://kubeai.kubeai.svc.cluster.local/openai/v1",
        ),
        ("http://kubeai/openai/v1", None, None, "http://kubeai/openai/v1"),
        ("http://kubeai/openai/v1/", None, None, "http://kubeai/openai/v1"),
        ("kubeai.example.com", "https", 8443, "https://kubeai.example.com:8443/openai/v1"),
        ("kubeai.example.com", None, None, "http://kubeai.example.com/openai/v1"),
        ("https://gw.example.com/kubeai", None, None, "https://gw.example.com/kubeai/openai/v1"),
        ("http://127.0.0.1:8000", None, 9000, "http://127.0.0.1:8000/openai/v1"),
    ],
)
def test_base_url(host: str, schema: str | None, port: int | None, expected: str) -> None:
    assert base_url_of("c", host, schema, port) == expected


@pytest.mark.parametrize(
    ("host", "message"), [(None, "has no host"), ("", "has no host"), ("ftp://x", r"not an http\(s\) URL")]
)
def test_bad_hosts(host: str | None, message: str) -> None:
    with pytest.raises(KubeAISpeechError, match=message):
        base_url_of("c", host, None, None)


def test_defaults_and_prefixed_extras() -> None:
    cfg = KubeAIConnectionConfig.from_connection("c", "https://k", None, None, "tok", {})
    assert (cfg.namespace, cfg.kubernetes_conn_id, cfg.verify, cfg.connect_timeout, cfg.read_timeout) == (
        "kubeai",
        "kubernetes_default",
        True,
        10.0,
        600.0,
    )
    cfg = KubeAIConnectionConfig.from_connection(
        "c",
        "http://k",
        None,
        None,
        None,
        {"extra__kubeai_speech__namespace": "ai", "verify_ssl": "false", "read_timeout": "30"},
    )
    assert (cfg.namespace, cfg.verify, cfg.read_timeout, cfg.token) == ("ai", False, 30.0, None)
    cfg = KubeAIConnectionConfig.from_connection("c", "https://k", None, None, None, {"ca_bundle": __file__})
    assert cfg.verify == __file__


def test_the_token_never_shows_in_repr() -> None:
    cfg = KubeAIConnectionConfig.from_connection("c", "https://k", None, None, "s3cr3t-token", {})
    assert "s3cr3t-token" not in repr(cfg) and "s3cr3t-token" not in str(cfg)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"read_timeout": "0"}, "read_timeout"),
        ({"connect_timeout": "soon"}, "connect_timeout"),
        ({"verify_ssl": "maybe"}, "verify_ssl"),
    ],
)
def test_bad_extras_name_the_field(extra: dict[str, str], message: str) -> None:
    with pytest.raises(KubeAISpeechError, match=message):
        KubeAIConnectionConfig.from_connection("c", "http://k", None, None, None, extra)


def test_the_cluster_side_reads_only_what_it_needs_of_the_connection() -> None:
    """A deferred wait in a triggerer that lacks the workers' ca_bundle file must not fail on it:
    the cluster side never calls the endpoint; the endpoint's settings are checked when it is used."""
    from unittest import mock

    from airflow.models.connection import Connection

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

    conn = Connection(
        conn_id="kubeai",
        conn_type="kubeai_speech",
        host="http://gateway.example.com",  # token over plain http: refused for the endpoint
        password="s3cret",
        extra={"ca_bundle": "/not/on/this/host.pem", "namespace": "speech", "kubernetes_conn_id": "k8s"},
    )
    hook = KubeAISpeechHook("kubeai")
    with mock.patch.object(KubeAISpeechHook, "get_connection", return_value=conn):
        assert hook.namespace == "speech"
        assert hook.cluster_settings.kubernetes_conn_id == "k8s"
        assert hook._async_kubernetes_hook().conn_id == "k8s"
        assert "config" not in hook.__dict__  # nothing parsed the endpoint's settings
        with pytest.raises(KubeAISpeechError):
            _ = hook.base_url  # the endpoint: now its settings are parsed and refused
