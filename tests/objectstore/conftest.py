"""Fixtures for tests against a real S3 API: moto's server mode on loopback, behind a proxy that can
be cut, reached by the provider through the amazon provider's s3fs filesystem and ``aws_default``.

- ``s3_server`` (session): the running :class:`~tests.s3_server.MotoS3`.
- ``s3`` (function): a clean S3 (moto reset), a fresh :class:`~tests.s3_server.TcpProxy` in front,
  ``AIRFLOW_CONN_AWS_DEFAULT`` pointing at the proxy, boto's own credential chain emptied, and
  Airflow's and fsspec's filesystem caches cleared before and after. It is an :class:`S3` helper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3_server import (
    MotoS3,
    TcpProxy,
    Traffic,
    aws_environment,
    clear_storage_caches,
    direct_client,
)


class S3:
    """One test's view of the local S3 API.

    :ivar endpoint_url: what ``aws_default`` points at (the proxy).
    :ivar proxy: the proxy (``cut()``, ``restore()``, ``bytes_up``, ``bytes_down``).
    :ivar traffic: every request moto answered (``bytes_read(prefix)``, ``requests(...)``).
    :ivar client: a boto3 client straight to moto, for arranging and inspecting data.
    """

    def __init__(self, server: MotoS3, proxy: TcpProxy) -> None:
        self.server = server
        self.proxy = proxy
        self.traffic: Traffic = server.traffic
        self.endpoint_url = proxy.url
        self.client = direct_client(server.url)

    def create_bucket(self, *names: str) -> None:
        for name in names:
            self.client.create_bucket(Bucket=name)

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bucket, key

    def put(self, uri: str, data: bytes, **extra: Any) -> None:
        bucket, key = self.split(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def get(self, uri: str) -> bytes:
        bucket, key = self.split(uri)
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def keys(self, uri: str) -> list[str]:
        """Every key under ``uri`` (a bucket or a prefix), relative to it."""
        bucket, prefix = self.split(uri.rstrip("/") + "/")
        prefix = prefix.lstrip("/")
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"][len(prefix) :] for item in page.get("Contents", []))
        return sorted(found)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(
    s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3]:
    s3_server.reset()
    proxy = TcpProxy(s3_server.get_host_and_port())
    scratch = tmp_path_factory.mktemp("aws")
    for key, value in aws_environment(proxy.url, str(scratch)).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    clear_storage_caches()
    try:
        yield S3(s3_server, proxy)
    finally:
        proxy.close()
        clear_storage_caches()


@pytest.fixture
def make_whisper(make_kubeai_sandbox: Any) -> Any:
    """A factory: a sandbox (fake engine, settings as given) with the Model ``whisper`` at 2 ready
    replicas."""
    from local_kubeai.testing import wait_until
    from tests.integration.conftest import model_manifest

    def make(**settings: Any) -> Any:
        settings = {"startup_delay": 0.1, "replica_concurrency": 2, **settings}
        sandbox = make_kubeai_sandbox(**settings)
        manifest = model_manifest("whisper", replicas=2, scaling={"min_replicas": 2})
        sandbox.store.create("kubeai", manifest, "t")
        wait_until(
            lambda: (
                (sandbox.store.get("kubeai", "whisper").get("status") or {}).get("replicas", {}).get("ready")
                == 2
            )
        )
        return sandbox

    return make


@pytest.fixture
def whisper(make_whisper: Any) -> Any:
    """A sandbox (fake engine) with the Model ``whisper`` at 2 ready replicas, 2 requests each."""
    return make_whisper()


__all__ = ["S3", "make_whisper", "s3", "s3_server", "whisper"]
