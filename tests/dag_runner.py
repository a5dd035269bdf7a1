"""Running DAG files with dag.test() against the sandbox (a pytest plugin of this test suite)."""

from __future__ import annotations

import contextlib
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


def _sqlite_metadata_is_sound() -> bool:
    """``PRAGMA quick_check`` of the worker's SQLite metadata database (True for other databases)."""
    import sqlite3

    from airflow import settings

    url = settings.engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        return True
    with contextlib.closing(sqlite3.connect(url.database)) as db:
        try:
            return bool(db.execute("PRAGMA quick_check").fetchone()[0] == "ok")
        except sqlite3.DatabaseError:
            return False


def _rebuild_metadata_db() -> None:
    # Known and not yet explained (seen once in CI, 2026-12-02): after the tests that SIGKILL a
    # dag.test() child sharing this worker's SQLite file (WAL mode), a later run read a
    # malformed task_instance page. The product never uses SQLite; the deployment tests run on
    # PostgreSQL. Say so loudly and start the worker's database again rather than fail every
    # later DAG test on this worker.
    import warnings
    from pathlib import Path

    from airflow import settings
    from airflow.utils.db import resetdb

    warnings.warn("the metadata database was malformed: rebuilt before this DAG run", stacklevel=3)
    database = Path(str(settings.engine.url.database))
    settings.engine.dispose()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    resetdb()
    _DEFAULT_PARAMS.clear()


def ensure_sound_metadata_db() -> None:
    """Rebuild the worker's SQLite metadata database when it is malformed (see above)."""
    if not _sqlite_metadata_is_sound():
        _rebuild_metadata_db()


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., DagResult]:
    def run(dag_id: str, logical_date: Any = None, **conf: Any) -> DagResult:
        ensure_sound_metadata_db()
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
