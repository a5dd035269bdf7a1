"""Where a connection's credentials may go, and what its TLS settings mean (pure: no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.connection import KubeAIConnectionConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connection.rst"


def config(uri: str) -> KubeAIConnectionConfig:
    """The config Airflow's own URI parsing gives (``schema=''`` for ``.../?__extra__``)."""
    from airflow.models.connection import Connection

    conn = Connection(conn_id="speech", uri=uri)
    return KubeAIConnectionConfig.from_connection(
        "speech", conn.host, conn.schema, conn.port, conn.password, conn.extra_dejson
    )


def test_the_documented_uri_gives_https(tmp_path: Path) -> None:
    uris = re.findall(r"AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT='(kubeai-speech://[^']+)'", DOCS.read_text())
    assert uris, "docs/connection.rst shows no URI form"
    for uri in uris:
        ca = re.search(r'"ca_bundle": "([^"]+)"', uri)
        if ca:  # the CA file must exist on the worker; put one where the docs say
            uri = uri.replace(ca.group(1), __file__)
        assert config(uri).base_url.startswith("https://"), uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("kubeai-speech://:TOKEN@gateway.example.com:443/", "https://gateway.example.com:443/openai/v1"),
        ("kubeai-speech://gateway.example.com:443/", "https://gateway.example.com:443/openai/v1"),
        (
            f"kubeai-speech://gateway.example.com:8443/?__extra__={json.dumps({'ca_bundle': __file__})}",
            "https://gateway.example.com:8443/openai/v1",
        ),
        (
            'kubeai-speech://gateway.example.com:8443/?__extra__={"verify_ssl": false}',
            "https://gateway.example.com:8443/openai/v1",
        ),
        # a token to a remote host without any scheme: https, never cleartext
        ("kubeai-speech://:TOKEN@gateway.example.com/", "https://gateway.example.com/openai/v1"),
        # no credentials: KubeAI's own in-cluster service is plain http
        (
            "kubeai-speech://kubeai.kubeai.svc.cluster.local/",
            "http://kubeai.kubeai.svc.cluster.local/openai/v1",
        ),
        # loopback (a port-forward, the sandbox) may stay http with a token
        ("kubeai-speech://:TOKEN@127.0.0.1:8000/", "http://127.0.0.1:8000/openai/v1"),
        ("kubeai-speech://:TOKEN@localhost:8000/http", "http://localhost:8000/openai/v1"),
    ],
)
def test_the_scheme_a_uri_resolves_to(uri: str, expected: str) -> None:
    assert config(uri).base_url == expected


@pytest.mark.parametrize(
    ("host", "schema", "password"),
    [
        ("http://gateway.example.com", None, "TOKEN"),
        ("gateway.example.com", "http", "TOKEN"),
        ("http://user:pa55word@gateway.example.com", None, None),
    ],
)
def test_credentials_over_plain_http_to_a_remote_host_are_refused(
    host: str, schema: str | None, password: str | None
) -> None:
    with pytest.raises(KubeAISpeechError) as err:
        KubeAIConnectionConfig.from_connection("speech", host, schema, None, password, {})
    message = str(err.value)
    assert "Connection 'speech'" in message and "cleartext" in message and "gateway.example.com" in message
    assert "Fix: use https" in message and "allow_token_over_http" in message
    assert "TOKEN" not in message and "pa55word" not in message


def test_allow_token_over_http_is_an_explicit_opt_in() -> None:
    cfg = KubeAIConnectionConfig.from_connection(
        "speech", "http://gateway.mesh", None, None, "TOKEN", {"allow_token_over_http": "true"}
    )
    assert cfg.base_url == "http://gateway.mesh/openai/v1" and cfg.token == "TOKEN"


def test_a_ca_bundle_on_plain_http_is_refused_not_ignored() -> None:
    with pytest.raises(
        KubeAISpeechError, match=r"ca_bundle=.* is set but its URL 'http://k/openai/v1' is plain http"
    ):
        KubeAIConnectionConfig.from_connection(
            "speech", "http://k", None, None, None, {"ca_bundle": __file__}
        )


def test_url_credentials_become_basic_auth_and_never_show() -> None:
    cfg = KubeAIConnectionConfig.from_connection(
        "speech", "https://us%40er:p%40ss-w0rd@gw.example.com", None, None, None, {}
    )
    assert cfg.base_url == "https://gw.example.com/openai/v1"
    assert cfg.basic_auth == ("us@er", "p@ss-w0rd")
    assert "p@ss" not in repr(cfg) and "p%40ss" not in repr(cfg) and "w0rd" not in str(cfg)
    assert {"p@ss-w0rd", "p%40ss-w0rd", "us@er:p@ss-w0rd"} <= set(cfg.secrets)
    with pytest.raises(KubeAISpeechError, match="both a password") as err:
        KubeAIConnectionConfig.from_connection("speech", "https://u:secret-pw@gw", None, None, "TOKEN", {})
    assert "secret-pw" not in str(err.value)
    with pytest.raises(KubeAISpeechError) as err:
        KubeAIConnectionConfig.from_connection("speech", "ftp://u:secret-pw@gw", None, None, None, {})
    assert "secret-pw" not in str(err.value)


@pytest.mark.parametrize("value", [[], {}, [True], 2, 0.5, "maybe"])
def test_verify_ssl_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(KubeAISpeechError, match=r"verify_ssl=.* is not a boolean. Fix: true or false"):
        KubeAIConnectionConfig.from_connection("speech", "https://k", None, None, None, {"verify_ssl": value})


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("false", False), ("1", True), (0, False)]
)
def test_verify_ssl_booleans(value: Any, expected: bool) -> None:
    cfg = KubeAIConnectionConfig.from_connection(
        "speech", "https://k", None, None, None, {"verify_ssl": value}
    )
    assert cfg.verify is expected


def test_ca_bundle_must_be_a_path_and_agree_with_verify_ssl() -> None:
    with pytest.raises(KubeAISpeechError, match=r"ca_bundle=\['/a.pem'\] is not a path"):
        KubeAIConnectionConfig.from_connection(
            "speech", "https://k", None, None, None, {"ca_bundle": ["/a.pem"]}
        )
    with pytest.raises(KubeAISpeechError, match="contradict each other"):
        KubeAIConnectionConfig.from_connection(
            "speech", "https://k", None, None, None, {"ca_bundle": __file__, "verify_ssl": False}
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_response_bytes": 0}, "max_response_bytes=0 is not a positive number of bytes"),
        ({"max_response_bytes": "lots"}, "max_response_bytes='lots'"),
        ({"max_response_bytes": 1.5}, "max_response_bytes=1.5"),
        ({"total_timeout": -1}, "total_timeout=-1 is not a positive number of seconds"),
        ({"total_timeout": "nan"}, "total_timeout='nan'"),
        ({"allow_token_over_http": "sure"}, "allow_token_over_http='sure' is not a boolean"),
    ],
)
def test_limits_are_checked(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(KubeAISpeechError, match=re.escape(message)):
        KubeAIConnectionConfig.from_connection("speech", "https://k", None, None, None, extra)


def test_limits_defaults_and_extras() -> None:
    cfg = KubeAIConnectionConfig.from_connection("speech", "https://k", None, None, None, {})
    assert (cfg.max_response_bytes, cfg.total_timeout) == (64 * 1024 * 1024, None)
    cfg = KubeAIConnectionConfig.from_connection(
        "speech", "https://k", None, None, None, {"max_response_bytes": "1000", "total_timeout": 30}
    )
    assert (cfg.max_response_bytes, cfg.total_timeout) == (1000, 30.0)
