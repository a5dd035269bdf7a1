"""The connection form as Airflow 3's UI gets it: ``GET /ui/connections/hook_meta`` from a real
``airflow api-server``, and the form itself in headless Chromium when it is installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def screenshots() -> Any:
    spec = importlib.util.spec_from_file_location("docs_screenshots", ROOT / "docs" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_ui_gets_the_form_with_hints_and_the_page_renders(tmp_path: Path) -> None:
    shots = screenshots()
    home = tmp_path / "airflow-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    with shots.ApiServer(home, tmp_path / "api-server.log") as server:
        (meta,) = [
            m for m in server.get("/ui/connections/hook_meta") if m["connection_type"] == "kubeai_speech"
        ]
        fields = meta["standard_fields"]
        assert fields["host"]["title"] == "KubeAI base URL"
        assert (
            fields["url_schema"]["title"] == "Scheme (http or https)" and fields["url_schema"]["placeholder"]
        )
        assert (
            fields["port"]["title"] == "Port (optional)" and "443 for https" in fields["port"]["placeholder"]
        )
        assert fields["login"]["hidden"] is True and fields["password"]["title"] == "Bearer token (optional)"
        # Airflow 3.3's hook_meta has no switch for the "Extra Fields JSON" editor (docs/connection.rst)
        assert "extra" not in fields
        assert set(meta["extra_fields"]) >= {"kubernetes_conn_id", "namespace", "verify_ssl", "ca_bundle"}
        if not Path(shots.CHROMIUM).exists():
            pytest.skip("no /usr/bin/chromium: the page itself is not rendered")
        png = tmp_path / "connection-form.png"
        labels = shots.connection_form(server, png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        for label in ("KubeAI base URL", "Scheme (http or https)", "Port (optional)", "Bearer token (optional)",
                      "Kubernetes connection id", "Namespace", "Verify TLS certificates"):  # fmt: skip
            assert label in labels, labels
        assert "Login" not in labels and "Schema" not in labels
