"""Sphinx configuration for airflow-provider-kubeai-speech."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kubeai-speech-docs-"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

project = "airflow-provider-kubeai-speech"
author = "airflow-provider-kubeai-speech developers"
copyright = "2026, airflow-provider-kubeai-speech developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "KubeAI speech provider for Apache Airflow"
suppress_warnings = ["ref.python"]

# Import Airflow (and the modules documented) normally before autodoc does: autodoc's import
# context breaks Airflow's start-up (pydantic schema generation in its logging configuration).
import airflow_provider_kubeai_speech.exceptions  # noqa: E402
import airflow_provider_kubeai_speech.hooks.kubeai  # noqa: E402
import airflow_provider_kubeai_speech.operators.invoke  # noqa: E402
import airflow_provider_kubeai_speech.operators.serve  # noqa: E402
import airflow_provider_kubeai_speech.operators.teardown  # noqa: E402
import airflow_provider_kubeai_speech.sensors.model_ready  # noqa: E402
import airflow_provider_kubeai_speech.triggers.model_ready  # noqa: E402, F401
