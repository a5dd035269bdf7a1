"""The state of a batch, read from its results manifest: done, failed, pending.

The manifest (``<output>/_transcriptions/part-*.jsonl``) only grows: every run appends one line
per input it handled (``ok``, ``skipped`` when the transcript was already there, ``failed``), so
a rerun adds a ``skipped`` line for each recording done before. **The last line of an input wins**:
that is what :func:`batch_state` reports, and what ``skip_existing`` reads.

From a shell::

    python -m airflow_provider_kubeai_speech.transcription summary /data/transcripts/2026-11-24
    python -m airflow_provider_kubeai_speech.transcription summary s3://transcripts/2026-11-24 \\
        --inputs 's3://calls/2026-11-24/*.wav' --conn-id aws_default

Pending recordings (never recorded) can only be known from the inputs: give ``--inputs`` (what
the operator's ``audio`` was) to count them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["BatchProgress", "batch_state", "main"]

#: Failures and pending inputs listed by the CLI (the counts are always complete).
LISTED = 20


@dataclass
class BatchProgress:
    """Where a batch stands, by the last manifest line of each input.

    :param location: the output folder read.
    :param done: inputs whose last line is ``ok`` or ``skipped`` (a transcript is there).
    :param failed: inputs whose last line is ``failed``.
    :param pending: inputs given but never recorded, or None when no inputs were given.
    :param failures: ``(input, error)`` of each failed input.
    :param pending_inputs: the pending inputs.
    :param records: manifest lines read (reruns add lines, not inputs).
    :param parts: manifest files read.
    """

    location: str
    done: int = 0
    failed: int = 0
    pending: int | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    pending_inputs: list[str] = field(default_factory=list)
    records: int = 0
    parts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(uri: str) -> str:
    """One spelling per local file (relative or absolute, ``file://`` or not)."""
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return os.path.abspath(uri.removeprefix("file://"))


def batch_state(
    location: Any,
    conn_id: str | None = None,
    *,
    inputs: str | os.PathLike[str] | Iterable[Any] | None = None,
    audio_conn_id: str | None = None,
) -> BatchProgress:
    """Count what a batch has done, from the manifest in its output folder.

    :param location: the output folder (``output_path``: a path, a URI or an ``ObjectStoragePath``).
    :param conn_id: the storage connection for ``location`` when its URI names none.
    :param inputs: what the operator's ``audio`` was (a path, glob, folder, URI or a list): inputs
        never recorded are then counted as pending. Recorded inputs it does not name still count.
    :param audio_conn_id: the storage connection for ``inputs``.
    """
    from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_state

    state = read_manifest_state(location, conn_id)
    progress = BatchProgress(location=str(location), records=state.records, parts=state.parts)
    for uri, record in state.last.items():
        if record.get("status") == "failed":
            progress.failed += 1
            progress.failures.append((uri, str(record.get("error") or "")))
        elif record.get("status") in ("ok", "skipped"):
            progress.done += 1
    if inputs is not None:
        from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs

        recorded = {_same(uri) for uri in state.last}
        progress.pending_inputs = [
            item.uri
            for item in resolve_inputs(inputs, audio_conn_id)
            if not item.nothing_found and _same(item.uri) not in recorded
        ]
        progress.pending = len(progress.pending_inputs)
    return progress


def render(progress: BatchProgress, inputs: str | None = None) -> str:
    """The summary the CLI prints."""
    lines = [
        f"Batch in {progress.location}: {progress.records} manifest line(s) in {progress.parts} part(s); "
        "the last line per input counts."
    ]
    if not progress.parts:
        lines.append("  no manifest yet: nothing was recorded there")
    lines.append(f"  done:    {progress.done}")
    lines.append(f"  failed:  {progress.failed}")
    if progress.pending is None:
        lines.append("  pending: unknown (give --inputs, the operator's audio, to count it)")
    else:
        lines.append(f"  pending: {progress.pending} (inputs {inputs!r} without a manifest line)")
    for title, items in (
        ("Failed", [f"{uri}: {error}" for uri, error in progress.failures]),
        ("Pending", progress.pending_inputs),
    ):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items[:LISTED])
            if len(items) > LISTED:
                lines.append(f"  ... and {len(items) - LISTED} more (--json lists them all)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m airflow_provider_kubeai_speech.transcription summary PATH [--inputs PATTERN]``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_kubeai_speech.transcription",
        description="Read a transcription batch's results manifest (the last line per input wins).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="print done, failed and pending counts of a batch")
    summary.add_argument("location", help="the output folder (output_path): a path or a URI")
    summary.add_argument(
        "--inputs", help="the operator's audio (path, glob, folder or URI), to count pending"
    )
    summary.add_argument("--conn-id", help="storage connection for the output folder's URI")
    summary.add_argument("--inputs-conn-id", help="storage connection for --inputs")
    summary.add_argument("--json", action="store_true", help="print the whole state as JSON")
    args = parser.parse_args(argv)
    progress = batch_state(args.location, args.conn_id, inputs=args.inputs, audio_conn_id=args.inputs_conn_id)
    print(json.dumps(progress.to_dict(), indent=2) if args.json else render(progress, args.inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
