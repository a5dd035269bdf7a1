"""Sharding one batch over mapped tasks: a stable partition by the sha256 of each input's location,
and the concurrency each shard may use against a Model (issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.transcription.shards import (
    check_shard,
    in_shard,
    shard_key,
    shard_of,
    speech_shards,
    suggested_concurrency,
)
from airflow_provider_kubeai_speech.transcription.sources import AudioInput

URIS = [f"s3://calls/2026-11-24/call-{i:05d}.wav" for i in range(4000)]


def test_every_input_in_exactly_one_shard_and_shards_are_balanced() -> None:
    shards = [list(in_shard(URIS, k, 8)) for k in range(8)]
    assert sorted(uri for shard in shards for uri in shard) == sorted(URIS)
    assert all(400 < len(shard) < 600 for shard in shards), [len(s) for s in shards]


def test_the_partition_is_the_same_in_another_process() -> None:
    """Python's hash() of a str is salted per process: a retry on another worker would get other files."""
    code = (
        "from airflow_provider_kubeai_speech.transcription.shards import shard_of;"
        f"print([shard_of(u, 8) for u in {URIS[:50]!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str([shard_of(u, 8) for u in URIS[:50]])
    # and pinned, so a new release does not move files between the shards of a running batch
    assert [shard_of(u, 8) for u in URIS[:8]] == PINNED


PINNED = [4, 2, 3, 7, 4, 0, 3, 4]


def test_a_new_file_moves_no_other() -> None:
    before = {u: shard_of(u, 8) for u in URIS}
    after = {u: shard_of(u, 8) for u in [*URIS, "s3://calls/2026-11-24/late.wav"]}
    assert all(after[u] == before[u] for u in URIS)


def test_local_inputs_shard_by_absolute_path_not_inode(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    relative = AudioInput("calls/a.wav", "a.wav", identity=(1, 2))
    absolute = AudioInput(str(tmp_path / "calls" / "a.wav"), "a.wav", identity=(1, 2))
    link = AudioInput(str(tmp_path / "calls" / "b.wav"), "b.wav", identity=(1, 2))
    assert shard_key(relative) == shard_key(absolute) != shard_key(link)
    remote = AudioInput("s3://calls/a.wav", "a.wav", path=object())
    assert shard_key(remote) == "s3://calls/a.wav"


def test_one_shard_takes_everything() -> None:
    assert list(in_shard(URIS[:10], 0, 1)) == URIS[:10]


def test_speech_shards_for_expand_kwargs() -> None:
    assert speech_shards(3, max_concurrency=2) == [
        {"shard_index": 0, "shard_count": 3, "max_concurrency": 2},
        {"shard_index": 1, "shard_count": 3, "max_concurrency": 2},
        {"shard_index": 2, "shard_count": 3, "max_concurrency": 2},
    ]
    with pytest.raises(ValueError, match="shard_count >= 1"):
        speech_shards(0)


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 2), (0, 0), (True, 2), (1.5, 2), ("x", 2)])
def test_bad_shards_refused(index: Any, count: Any) -> None:
    with pytest.raises(ValueError, match="shard_"):
        check_shard(index, count)
    with pytest.raises(KubeAISpeechError, match=r"Fix: e\.g\. \.expand_kwargs"):
        InvokeSpeechOperator(
            task_id="t",
            model_name="whisper",
            audio="/a.wav",
            output_path="/o",
            shard_index=index,
            shard_count=count,
        )


def test_templated_shard_arguments_wait_for_rendering() -> None:
    InvokeSpeechOperator(
        task_id="t",
        model_name="whisper",
        audio="/a.wav",
        output_path="/o",
        shard_index="{{ params.k }}",
        shard_count=4,
    )


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ({"autoscalingDisabled": True, "replicas": 2}, {"per_replica": 4}, 8),
        ({"autoscalingDisabled": True, "replicas": 2}, {"per_replica": 4, "shards": 3}, 3),
        ({"minReplicas": 0, "maxReplicas": 3, "targetRequests": 4}, {}, 12),
        ({"minReplicas": 0, "maxReplicas": 3, "targetRequests": 4}, {"shards": 8}, 2),
        ({"minReplicas": 1, "maxReplicas": 20}, {}, 1000),  # targetRequests defaults to 100, capped
        ({"replicas": 0, "autoscalingDisabled": True}, {"per_replica": 2}, 2),  # at least one replica
        ({"maxReplicas": 2, "targetRequests": 1}, {"shards": 8}, 1),  # at least 1
    ],
)
def test_suggested_concurrency(spec: dict[str, Any], kwargs: dict[str, Any], expected: int) -> None:
    assert suggested_concurrency({"spec": spec}, **kwargs) == expected
    assert suggested_concurrency(spec, **kwargs) == expected


def test_suggested_concurrency_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="shards=0"):
        suggested_concurrency({"spec": {}}, shards=0)
    with pytest.raises(ValueError, match="per_replica=0"):
        suggested_concurrency({"spec": {}}, per_replica=0)


def test_a_shard_reads_every_part_but_keeps_only_its_own_inputs(tmp_path: Path) -> None:
    from airflow_provider_kubeai_speech.transcription.manifest import (
        FileResult,
        ManifestWriter,
        read_manifest_state,
    )
    from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder

    folder = OutputFolder(tmp_path / "out")
    for shard in range(2):  # two tasks, two parts
        writer = ManifestWriter(folder, f"run-{shard}")
        writer.open()
        for uri in in_shard(URIS[:200], shard, 2):
            writer.append(FileResult(uri, f"/out/{uri[-9:]}", "ok").to_json())
        writer.close()
    mine = set(in_shard(URIS[:200], 1, 2))
    state = read_manifest_state(folder, only=mine)
    assert (state.parts, state.records) == (2, 200)
    assert set(state.last) == mine
    assert set(read_manifest_state(folder).last) == set(URIS[:200])
