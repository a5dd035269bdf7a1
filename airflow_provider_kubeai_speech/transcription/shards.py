"""One batch over many Airflow tasks: a stable partition of the inputs, and how much each may send.

A shard is picked by the sha256 of an input's location (its URI, or the absolute path of a local
file), never by Python's ``hash()`` (salted per process) nor by its position in a listing (a new
file would move the others): a retry of shard ``k``, on any worker, gets the same files, and a file
added to the folder joins one shard without moving any other.

Typical use, with dynamic task mapping::

    InvokeSpeechOperator.partial(task_id="transcribe", model_name=..., audio=..., output_path=...,
                                 pool="whisper", max_concurrency=4).expand_kwargs(speech_shards(8))
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

#: KubeAI's default ``targetRequests`` (requests in flight per replica the autoscaler aims for).
DEFAULT_TARGET_REQUESTS = 100
#: The operator's largest ``max_concurrency``.
MAX_CONCURRENCY = 1000


def check_shard(shard_index: Any, shard_count: Any) -> tuple[int, int]:
    """``(shard_index, shard_count)`` as whole numbers with ``0 <= shard_index < shard_count``.

    :raises ValueError: they are not.
    """
    for name, value in (("shard_index", shard_index), ("shard_count", shard_count)):
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
            raise ValueError(f"{name}={value!r} is not a whole number >= 0")
    index, count = int(shard_index), int(shard_count)
    if count < 1 or index >= count:
        raise ValueError(
            f"shard_index={index} of shard_count={count}: need shard_count >= 1 and 0 <= shard_index < shard_count"
        )
    return index, count


def shard_of(location: str, shard_count: int) -> int:
    """The shard (``0 .. shard_count - 1``) that ``location`` belongs to, the same in every process."""
    if shard_count <= 1:
        return 0
    digest = hashlib.sha256(location.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def shard_key(item: Any) -> str:
    """What picks an input's shard: a remote input's URI (without connection id), a local one's
    absolute path (its path, not its inode: two hard links are two inputs); a string as it is."""
    if isinstance(item, str):
        return item
    if getattr(item, "path", None) is not None:
        return str(item.uri)
    return os.path.abspath(str(item.uri))


def in_shard(inputs: Iterable[Any], shard_index: int, shard_count: int) -> Iterator[Any]:
    """The items of ``inputs`` (strings, or :class:`~.sources.AudioInput`) that fall in ``shard_index``."""
    for item in inputs:
        if shard_of(shard_key(item), shard_count) == shard_index:
            yield item


def speech_shards(shard_count: int, **common: Any) -> list[dict[str, Any]]:
    """Keyword sets for ``InvokeSpeechOperator.partial(...).expand_kwargs(...)``, one per shard.

    :param shard_count: how many mapped tasks share the batch.
    :param common: more keywords every shard gets (e.g. ``max_concurrency=4``).
    """
    check_shard(0, shard_count)
    return [{"shard_index": k, "shard_count": shard_count, **common} for k in range(shard_count)]


def suggested_concurrency(
    model: Mapping[str, Any],
    *,
    shards: int = 1,
    per_replica: int | None = None,
) -> int:
    """``max_concurrency`` for each of ``shards`` tasks sending to ``model``, so that together they
    keep the Model busy without queueing far past it.

    Capacity is replicas x requests per replica. The replicas are ``maxReplicas`` when the
    autoscaler is on (so the load can drive it all the way up: KubeAI adds a replica when the
    average in flight passes ``targetRequests`` per replica), else ``replicas``. Requests per
    replica are ``per_replica`` when given (what one engine serves at once), else the Model's
    ``targetRequests`` (KubeAI's own hint, default 100). Each shard gets its share, rounded up,
    at least 1 and at most 1000; bound the sum across shards with an Airflow pool.

    :param model: a Model object or manifest (``{"spec": {...}}``) or its ``spec``.
    :param shards: tasks sharing the Model at once.
    :param per_replica: requests one replica serves at once (overrides ``targetRequests``).
    """
    spec = model.get("spec", model)
    if shards < 1:
        raise ValueError(f"shards={shards!r} must be >= 1")
    autoscaling = not spec.get("autoscalingDisabled", False)
    replicas = int(spec.get("maxReplicas") or 0) if autoscaling else 0
    if replicas < 1:
        replicas = max(1, int(spec.get("replicas") or 0), int(spec.get("minReplicas") or 0))
    each = int(
        per_replica if per_replica is not None else spec.get("targetRequests") or DEFAULT_TARGET_REQUESTS
    )
    if each < 1:
        raise ValueError(f"per_replica={each!r} must be >= 1")
    return max(1, min(MAX_CONCURRENCY, math.ceil(replicas * each / shards)))
