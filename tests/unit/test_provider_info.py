"""The provider registers with Airflow: entry point, metadata schema, declarative connection form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.get_provider_info import get_provider_info

CONN_FIELDS = {
    "kubernetes_conn_id",
    "namespace",
    "verify_ssl",
    "ca_bundle",
    "connect_timeout",
    "read_timeout",
    "total_timeout",
    "max_response_bytes",
    "allow_token_over_http",
}


def _airflow_json(*args: str) -> list[dict[str, str]]:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), *args, "-o", "json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=True,
    )
    # Airflow may log a line to stdout before the table (e.g. in unit-test mode).
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("[")))


def test_metadata_validates_against_airflows_schema() -> None:
    import jsonschema
    from airflow import providers_manager

    schema = json.loads((Path(providers_manager.__file__).with_name("provider_info.schema.json")).read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_is_declarative_with_the_designed_fields() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == "kubeai_speech"
    assert set(conn["conn-fields"]) == CONN_FIELDS
    assert conn["conn-fields"]["verify_ssl"]["schema"]["default"] is True
    assert conn["conn-fields"]["kubernetes_conn_id"]["schema"]["default"] == "kubernetes_default"


def test_the_forms_types_and_defaults_are_the_parsers() -> None:
    import jsonschema

    from airflow_provider_kubeai_speech.hooks.connection import (
        DEFAULT_MAX_RESPONSE_BYTES,
        KubeAIConnectionConfig,
    )

    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    assert fields["max_response_bytes"]["schema"]["type"] == ["integer", "null"]
    assert fields["max_response_bytes"]["schema"]["default"] == DEFAULT_MAX_RESPONSE_BYTES
    assert fields["total_timeout"]["schema"]["type"] == ["number", "null"]
    assert "default" not in fields["total_timeout"]["schema"]  # empty: derived from the upload's size
    assert fields["allow_token_over_http"]["schema"] == {"type": ["boolean", "null"], "default": False}
    for name in ("total_timeout", "max_response_bytes", "allow_token_over_http"):
        assert fields[name]["label"] and fields[name]["description"]
    defaults = {name: f["schema"]["default"] for name, f in fields.items() if "default" in f["schema"]}
    config = KubeAIConnectionConfig.from_connection(
        "form", "http://kubeai.local", None, None, None, {**defaults, "total_timeout": 30}
    )
    assert config.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES and config.total_timeout == 30
    # what the form refuses, the parser refuses too
    for name, bad in (("total_timeout", 0), ("max_response_bytes", 0)):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, fields[name]["schema"])
        with pytest.raises(KubeAISpeechError, match=name):
            KubeAIConnectionConfig.from_connection(
                "form", "http://kubeai.local", None, None, None, {name: bad}
            )


def test_airflow_cli_lists_the_provider_and_its_connection_fields() -> None:
    listed = _airflow_json("providers", "get", "airflow-provider-kubeai-speech")
    assert listed[0]["Provider"] == "airflow-provider-kubeai-speech"
    widgets = _airflow_json("providers", "widgets")
    ours = {
        w["connection_parameter_name"]
        for w in widgets
        if w["package_name"] == "airflow-provider-kubeai-speech"
    }
    assert ours == {f"extra__kubeai_speech__{name}" for name in CONN_FIELDS}


def test_version_guard_refuses_airflow_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    import airflow_provider_kubeai_speech as pkg

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.10.5")
    with pytest.raises(
        RuntimeError, match=r"needs Apache Airflow 3.2 or newer .*; apache-airflow 2.10.5 is installed"
    ):
        pkg._check_airflow_version()


@pytest.mark.parametrize(("installed", "refused"), [("3.1.8", True), ("3.2.0", False), ("3.3.2", False)])
def test_version_guard_needs_the_connection_form_of_3_2(
    monkeypatch: pytest.MonkeyPatch, installed: str, refused: bool
) -> None:
    import importlib.metadata

    import airflow_provider_kubeai_speech as pkg

    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed)
    if refused:
        with pytest.raises(
            RuntimeError, match=rf"needs Apache Airflow 3.2 or newer .*{installed} is installed"
        ):
            pkg._check_airflow_version()
    else:
        pkg._check_airflow_version()
