"""Listing an S3 prefix walks it once: 2 pages of keys cost 2 list requests (plus one look at
the key itself), not a walk to ask "is it a folder?" and another to list it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.objectstore.conftest import S3


def test_a_prefix_of_two_pages_is_listed_in_one_walk(s3: S3) -> None:
    s3.create_bucket("calls")
    with ThreadPoolExecutor(8) as pool:  # 1001 keys: S3 lists 1000 a page
        list(pool.map(lambda i: s3.put(f"s3://calls/day/c-{i:04d}.wav", b"RIFF"), range(1001)))
    s3.traffic.clear()
    inputs = resolve_inputs("s3://calls/day/")
    assert len(inputs) == 1001 and all(item.problem is None for item in inputs)
    pages = [
        r.query
        for r in s3.traffic.requests()
        if r.method == "GET" and "list-type=2" in r.query and "max-keys=1&" not in r.query
    ]
    assert len(pages) == 2, pages  # the is-it-an-object look (HEAD, one key) is not a walk
