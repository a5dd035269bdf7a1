"""A local KubeAI for development, demos and tests (``python -m airflow_provider_kubeai_speech.sandbox``).

Needs the ``sandbox`` extra: ``pip install 'airflow-provider-kubeai-speech[sandbox]'``.
"""

from __future__ import annotations

from airflow_provider_kubeai_speech.sandbox.config import SandboxConfig
from airflow_provider_kubeai_speech.sandbox.faults import Faults
from airflow_provider_kubeai_speech.sandbox.server import Sandbox

__all__ = ["Faults", "Sandbox", "SandboxConfig"]
