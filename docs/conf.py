"""Sphinx configuration for airflow-provider-kubeai-speech."""

from __future__ import annotations

import os

# Importing the operators imports Airflow, which needs a home: one inside the build folder (a temp
# folder per build would be left behind). Not unit-test mode: that only adds a log line.
os.environ.setdefault("AIRFLOW_HOME", os.path.join(os.path.dirname(__file__), "_build", "airflow-home"))

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
html_static_path = ["_static"]
html_css_files = ["custom.css"]
# wide enough for the code listings at 1280 px; custom.css wraps what is still longer
html_theme_options = {"page_width": "1180px", "sidebar_width": "220px"}
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
