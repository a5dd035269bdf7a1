"""The S3 test harness itself: aws_default reaches moto through the proxy, nothing else does, the
traffic record counts what was read, and a cut makes the store unreachable."""

from __future__ import annotations

import pytest

from tests.objectstore.conftest import S3


def test_aws_default_reaches_moto_and_reads_are_counted(s3: S3) -> None:
    from airflow.sdk import ObjectStoragePath

    s3.create_bucket("calls")
    s3.put("s3://calls/a.bin", b"x" * 10_000)
    s3.traffic.clear()
    path = ObjectStoragePath("s3://calls/a.bin", conn_id="aws_default")
    with path.open("rb") as handle:
        assert handle.read(100) == b"x" * 100
    assert 100 <= s3.traffic.bytes_read("calls/a.bin") <= 10_000
    assert s3.proxy.bytes_down > 0  # it went through the proxy


def test_boto_chain_alone_finds_no_credentials(s3: S3) -> None:
    """Without the connection, boto's chain is empty: code that ignores aws_default cannot pass."""
    import boto3
    import botocore.exceptions

    s3.create_bucket("calls")
    with pytest.raises(botocore.exceptions.NoCredentialsError):
        boto3.client("s3").list_objects_v2(Bucket="calls")


def test_cut_makes_the_store_unreachable_until_restored(s3: S3) -> None:
    import boto3
    import botocore.exceptions

    s3.create_bucket("calls")
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    client.put_object(Bucket="calls", Key="k", Body=b"1")
    s3.proxy.cut()
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.get_object(Bucket="calls", Key="k")
    s3.proxy.restore()
    assert client.get_object(Bucket="calls", Key="k")["Body"].read() == b"1"


def test_writes_are_counted(s3: S3) -> None:
    from airflow.sdk import ObjectStoragePath

    s3.create_bucket("transcripts")
    s3.traffic.clear()
    ObjectStoragePath("s3://transcripts/day/a.txt", conn_id="aws_default").write_bytes(b"y" * 5000)
    assert sum(r.bytes_in for r in s3.traffic.requests("transcripts/day/a.txt", "PUT")) == 5000
    assert s3.traffic.bytes_moved("transcripts/day/") == 5000
    assert s3.get("s3://transcripts/day/a.txt") == b"y" * 5000
