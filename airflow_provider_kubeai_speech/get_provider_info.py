"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_kubeai_speech import __version__

PACKAGE_NAME = "airflow-provider-kubeai-speech"
CONNECTION_TYPE = "kubeai_speech"
HOOK_CLASS = "airflow_provider_kubeai_speech.hooks.kubeai.KubeAISpeechHook"


def _connection_type() -> dict[str, Any]:
    # Declarative connection form (Airflow >= 3.2): the UI needs no import of the hook or wtforms.
    return {
        "hook-class-name": HOOK_CLASS,
        "hook-name": "KubeAI Speech",
        "connection-type": CONNECTION_TYPE,
        "conn-fields": {
            "kubernetes_conn_id": {
                "label": "Kubernetes connection id",
                "description": "cncf-kubernetes connection used for the cluster side (Model resources).",
                "schema": {"type": ["string", "null"], "default": "kubernetes_default"},
            },
            "namespace": {
                "label": "Namespace",
                "description": "Namespace KubeAI watches for Models (KubeAI only sees its own namespace).",
                "schema": {"type": ["string", "null"], "default": "kubeai"},
            },
            "verify_ssl": {
                "label": "Verify TLS certificates",
                "description": "Verify the endpoint's TLS certificate (on by default).",
                "schema": {"type": ["boolean", "null"], "default": True},
            },
            "ca_bundle": {
                "label": "CA bundle path",
                "description": "PEM file of CA certificates to trust for the endpoint.",
                "schema": {"type": ["string", "null"]},
            },
            "connect_timeout": {
                "label": "Connect timeout (s)",
                "description": "Seconds to wait for a TCP/TLS connection to the endpoint.",
                "schema": {"type": ["number", "null"], "default": 10},
            },
            "read_timeout": {
                "label": "Read timeout (s)",
                "description": (
                    "Seconds to wait for a response. KubeAI holds a request while it scales a "
                    "Model up from zero, so allow for a cold start."
                ),
                "schema": {"type": ["number", "null"], "default": 600},
            },
            "total_timeout": {
                "label": "Total timeout (s)",
                "description": (
                    "Seconds one attempt may take, upload and answer included. Empty: connect timeout "
                    "+ 2 x read timeout + 1 s per 256 KiB uploaded."
                ),
                "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
            },
            "max_response_bytes": {
                "label": "Largest answer (bytes)",
                "description": "The longest answer read; a longer one is a failure (default 64 MiB).",
                # hooks.connection.DEFAULT_MAX_RESPONSE_BYTES (not imported: this module stays light)
                "schema": {"type": ["integer", "null"], "default": 64 * 1024 * 1024, "minimum": 1},
            },
            "allow_token_over_http": {
                "label": "Allow the token over plain http",
                "description": (
                    "Send the token or URL credentials over plain http to a host that is not loopback. "
                    "Only for a network trusted end to end (e.g. a service mesh with mTLS)."
                ),
                "schema": {"type": ["boolean", "null"], "default": False},
            },
        },
        # Airflow 3's form (hook_meta) can hide, relabel and give placeholders to description,
        # schema, host, port, login and password only: its "Extra Fields JSON" editor has no switch
        # (3.3.2), so "extra" in hidden-fields only matters to Airflow 2's form.
        "ui-field-behaviour": {
            "hidden-fields": ["login", "extra"],
            "relabeling": {
                "host": "KubeAI base URL",
                "schema": "Scheme (http or https)",
                "port": "Port (optional)",
                "password": "Bearer token (optional)",
            },
            "placeholders": {
                "host": "http://kubeai.kubeai.svc.cluster.local",
                "schema": "only used when the base URL has no scheme",
                "port": "only when the base URL has none: 80 for http, 443 for https",
                "password": "token for a gateway in front of KubeAI",
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated by Airflow against provider_info.schema.json)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "KubeAI Speech",
        "description": "Serve speech-to-text models on Kubernetes with KubeAI and transcribe audio from DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "KubeAI Speech",
                "external-doc-url": "https://www.kubeai.org/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "KubeAI Speech",
                "python-modules": ["airflow_provider_kubeai_speech.hooks.kubeai"],
            }
        ],
        "operators": [
            {
                "integration-name": "KubeAI Speech",
                "python-modules": [
                    "airflow_provider_kubeai_speech.operators.serve",
                    "airflow_provider_kubeai_speech.operators.invoke",
                    "airflow_provider_kubeai_speech.operators.teardown",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "KubeAI Speech",
                "python-modules": ["airflow_provider_kubeai_speech.sensors.model_ready"],
            }
        ],
        "triggers": [
            {
                "integration-name": "KubeAI Speech",
                "python-modules": ["airflow_provider_kubeai_speech.triggers.model_ready"],
            }
        ],
        "connection-types": [_connection_type()],
    }
