"""Test-wide set-up: a private AIRFLOW_HOME and DAGs folder, set before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="kubeai-speech-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
# dag.test() needs the DAG in the DAGs folder (3.3 refuses unserialised DAGs): link the example
# DAGs and the test DAGs into one folder.
for folder in (ROOT / "example_dags", ROOT / "tests" / "dags"):
    for path in sorted(folder.glob("*.py")) if folder.exists() else []:
        (_DAGS / path.name).symlink_to(path)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

# local_kubeai.testing also arrives by local-kubeai's pytest11 entry point, under the same name, so
# pytest registers it once; it is listed for runs with PYTEST_DISABLE_PLUGIN_AUTOLOAD set.
pytest_plugins = [
    "local_kubeai.testing",
    "tests.dag_runner",
    "tests.long_audio_files",
]
