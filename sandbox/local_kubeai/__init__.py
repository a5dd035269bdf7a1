"""A local KubeAI for development, demos and tests (``local-kubeai`` or ``python -m local_kubeai``).

Its own distribution, ``local-kubeai`` (``pip install ./sandbox`` from a checkout of the provider):
it imports nothing of the Airflow provider it tests.
"""

from __future__ import annotations

from local_kubeai.config import SandboxConfig
from local_kubeai.faults import Faults
from local_kubeai.server import Sandbox

__all__ = ["Faults", "Sandbox", "SandboxConfig"]
