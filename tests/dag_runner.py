"""Running DAG files with dag.test() against the sandbox (a pytest plugin of this test suite)."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata database, once per test session (and per xdist worker)."""
    from airflow.utils.db import resetdb

    resetdb()


@functools.cache
def _dag_bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    return bag


def load_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` from the DAGs folder (example DAGs and test DAGs)."""
    return _dag_bag().dags[dag_id]


class DagResult:
    """The outcome of one dag.test() run: states and XComs by task id."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.state = str(run.state)
        self.tis = {ti.task_id: ti for ti in run.get_task_instances()}

    def task_state(self, task_id: str) -> str:
        return str(self.tis[task_id].state)

    def xcom(self, task_id: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(
                    dag_id=self.run.dag_id, run_id=self.run.run_id, task_id=task_id, key="return_value"
                )
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)


_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {}


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., DagResult]:
    def run(dag_id: str, logical_date: Any = None, **conf: Any) -> DagResult:
        dag = load_dag(dag_id)
        # A run's conf stays on the DAG object's params: always send every param, defaults included.
        defaults = _DEFAULT_PARAMS.setdefault(dag_id, copy.deepcopy(dag.params.dump()))
        return DagResult(dag.test(run_conf={**defaults, **conf} or None, logical_date=logical_date))

    return run


def start_dag_in_child(dag_id: str, conf: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    """Run a DAG with dag.test() in a child process (a worker the test can SIGKILL)."""
    script = f"from tests.dag_runner import load_dag; load_dag({dag_id!r}).test(run_conf={conf!r})"
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
