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
            return  # no Airflow installed: nothing to check here
    from packaging.version import Version

    if Version(installed).release[:2] < (3, 2):
        raise RuntimeError(
            f"airflow-provider-kubeai-speech {__version__} needs Apache Airflow 3.2 or newer (its "
            f"connection form is declared the 3.2 way); apache-airflow {installed} is installed. Upgrade "
            "Airflow (pip install 'apache-airflow>=3.2') or pin an older provider."
        )


_check_airflow_version()
