"""The sandbox: a local KubeAI (Kubernetes API for Models, a controller, the speech endpoint)."""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

from local_kubeai.config import SandboxConfig
from local_kubeai.controller import Controller
from local_kubeai.crd import model_crd
from local_kubeai.engines import Engine, make_engine
from local_kubeai.faults import FaultInjector, Faults
from local_kubeai.http import SandboxHTTPServer
from local_kubeai.kube_api import KubeApiHandler
from local_kubeai.openai_api import KubeAIHandler
from local_kubeai.stats import Stats
from local_kubeai.store import ModelStore

log = logging.getLogger("local_kubeai")


class Sandbox:
    """A local KubeAI for development, demos and tests; a test double for the cluster.

    It listens on two loopback ports: a Kubernetes API (bearer token, kubeconfig written to
    ``state_dir``) and KubeAI's OpenAI-compatible endpoint. Use it as a context manager::

        with Sandbox(SandboxConfig(engine="pocketsphinx")) as sandbox:
            os.environ.update(sandbox.airflow_connections())

    :param config: how it behaves; see :class:`SandboxConfig`.
    :param faults: faults to inject from the start.
    """

    def __init__(self, config: SandboxConfig | None = None, faults: Faults | None = None) -> None:
        self.config = config or SandboxConfig()
        self.faults = FaultInjector(faults, seed=self.config.seed)
        self.stats = Stats()
        self.store = ModelStore(
            model_crd(), history=self.config.watch_history, history_seconds=self.config.watch_history_seconds
        )
        self.controller = Controller(self.store, self.config, self.faults)
        self.engine: Engine = make_engine(self.config.engine, model_path=self.config.model_path)
        self._own_state_dir = self.config.state_dir is None
        # absolute, so the kubeconfig and connections.env it writes work from any folder
        self.state_dir = Path(self.config.state_dir or tempfile.mkdtemp(prefix="kubeai-sandbox-")).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port_changes: list[str] = []
        self.ca_path: Path | None = None
        self._servers: list[SandboxHTTPServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def namespace(self) -> str:
        """KubeAI's own namespace (the only one its proxy serves)."""
        return self.config.namespaces[0]

    @property
    def scheme(self) -> str:
        """The KubeAI endpoint's scheme."""
        return "https" if self.config.tls else "http"

    @property
    def kube_address(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"{host!s}:{port}"

    @property
    def kube_url(self) -> str:
        return f"{'https' if self.config.kube_tls else 'http'}://{self.kube_address}"

    @property
    def kubeai_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ports_path(self) -> Path:
        return self.state_dir / "ports.json"

    def _remembered_ports(self) -> dict[str, int]:
        """The ports of this state dir's last run, so a restart keeps a sourced environment working."""
        if self._own_state_dir or not self.ports_path.exists():
            return {}
        try:
            return {k: int(v) for k, v in json.loads(self.ports_path.read_text()).items()}
        except (ValueError, AttributeError):
            return {}

    def _bind(
        self, name: str, wanted: int, remembered: int | None, handler: type, tls: ssl.SSLContext | None
    ) -> SandboxHTTPServer:
        if not wanted and remembered:
            try:
                return SandboxHTTPServer((self.config.host, remembered), handler, self, tls)
            except OSError as err:
                self.port_changes.append(
                    f"{name} port {remembered} of the last run in {self.state_dir} is taken ({err.strerror}): "
                    "serving on a new port; re-source connections.env"
                )
                log.warning("%s", self.port_changes[-1])
        return SandboxHTTPServer((self.config.host, wanted), handler, self, tls)

    def start(self) -> Sandbox:
        context = self._tls_context() if self.config.tls or self.config.kube_tls else None
        remembered = self._remembered_ports()
        for name, port, handler, tls in (
            ("kube", self.config.kube_port, KubeApiHandler, context if self.config.kube_tls else None),
            ("kubeai", self.config.kubeai_port, KubeAIHandler, context if self.config.tls else None),
        ):
            server = self._bind(name, port, remembered.get(name), handler, tls)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"kubeai-sandbox-{handler.__name__}",
            )
            self._servers.append(server)
            self._threads.append(thread)
        self.controller.start()
        for thread in self._threads:
            thread.start()
        self.write_kubeconfig()
        ports = {
            name: server.server_address[1]
            for name, server in zip(("kube", "kubeai"), self._servers, strict=True)
        }
        self.ports_path.write_text(json.dumps(ports))
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stopping = True
            server.shutdown()
            server.server_close()
        self.controller.stop()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tls_context(self) -> ssl.SSLContext:
        from local_kubeai.tls import make_certificates

        self.ca_path, cert, key = make_certificates(self.state_dir / "tls", self.config.host)
        self.ca_path = self.ca_path.resolve()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def write_kubeconfig(self) -> Path:
        cluster: dict[str, Any] = {"server": self.kube_url}
        if self.ca_path is not None and self.config.kube_tls:
            cluster["certificate-authority"] = str(self.ca_path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubeai-sandbox", "cluster": cluster}],
            "users": [{"name": "airflow", "user": {"token": self.config.token}}],
            "contexts": [
                {
                    "name": "kubeai-sandbox",
                    "context": {"cluster": "kubeai-sandbox", "user": "airflow", "namespace": self.namespace},
                }
            ],
            "current-context": "kubeai-sandbox",
        }
        self.kubeconfig_path.write_text(json.dumps(config, indent=2))
        self.kubeconfig_path.chmod(0o600)
        return self.kubeconfig_path

    def airflow_connections(
        self, *, kubernetes_conn_id: str = "kubernetes_default", kubeai_conn_id: str = "kubeai_speech_default"
    ) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` environment variables for both connections (JSON form)."""
        kube = {
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(self.kubeconfig_path), "namespace": self.namespace},
        }
        extra: dict[str, Any] = {"kubernetes_conn_id": kubernetes_conn_id, "namespace": self.namespace}
        if self.ca_path is not None and self.config.tls:
            extra["ca_bundle"] = str(self.ca_path)
        kubeai: dict[str, Any] = {"conn_type": "kubeai_speech", "host": self.kubeai_url, "extra": extra}
        if self.config.gateway_token:
            kubeai["password"] = self.config.gateway_token
        return {
            f"AIRFLOW_CONN_{kubernetes_conn_id.upper()}": json.dumps(kube),
            f"AIRFLOW_CONN_{kubeai_conn_id.upper()}": json.dumps(kubeai),
        }
