"""Apache Airflow provider for speech-to-text models served on Kubernetes by KubeAI."""

from __future__ import annotations

__version__ = "0.1.0"


def _check_airflow_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("apache-airflow-core")
    except PackageNotFoundError:
        try:
            installed = version("apache-airflow")
        except PackageNotFoundError:
            return  # spec.py and the sandbox are usable without Airflow
    major = int(installed.split(".", 1)[0])
    if major < 3:
        raise RuntimeError(
            f"airflow-provider-kubeai-speech {__version__} needs Apache Airflow 3.0 or newer; "
            f"apache-airflow {installed} is installed. Upgrade Airflow "
            "(pip install 'apache-airflow>=3.0') or pin an older provider."
        )


_check_airflow_version()
