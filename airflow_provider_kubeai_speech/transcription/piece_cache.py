"""Finished pieces of a long recording, kept in the output folder until its transcript is written.

``<output>/.pieces/<transcript name>/`` holds ``plan.json`` (what the pieces were cut from and how)
and one ``piece-NNNNN.json`` per transcribed piece, written atomically as each answer arrives. A
rerun after a failure or a kill cuts the same pieces (decoding is deterministic) and sends only
those without a result; when every piece is there, nothing is decoded at all. A plan made with
other settings, or for another file of the same name, is discarded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.transcription.splitter import Piece

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder

PIECES_FOLDER = ".pieces"
PLAN_NAME = "plan.json"
CACHE_VERSION = 2  # 2: pieces without word timestamps unless the transcript keeps words


class PieceCache:
    """The cache of one recording's pieces.

    :param folder: its folder (``<output>/.pieces/<transcript name>``).
    :param fingerprint: what makes two runs cut the same pieces (input, size, settings).
    """

    def __init__(self, folder: OutputFolder, fingerprint: Mapping[str, Any]) -> None:
        self.folder = folder
        self.fingerprint = {"version": CACHE_VERSION, **fingerprint}
        self._plan: dict[str, Any] = {}

    @classmethod
    def for_output(cls, output: OutputFolder, name: str, fingerprint: Mapping[str, Any]) -> PieceCache:
        return cls(output.subfolder(PIECES_FOLDER).subfolder(name), fingerprint)

    @property
    def location(self) -> str:
        return self.folder.uri

    def open(self) -> None:
        """Start or resume: keep what a run with the same fingerprint left, drop anything else."""
        text = self.folder.read(PLAN_NAME) if self._exists() else None
        plan = _loads(text)
        if plan is not None and plan.get("fingerprint") == self.fingerprint:
            self._plan = plan
            self.folder.remove_partials()
            return
        if text is not None:
            self.folder.remove_all()
        self.folder.prepare()
        self._plan = {"fingerprint": self.fingerprint, "pieces": None}
        self.folder.write(PLAN_NAME, json.dumps(self._plan))

    def get(self, piece: Piece) -> dict[str, Any] | None:
        """The cached result of ``piece``, when the same samples were transcribed before."""
        record = _loads(self.folder.read(_piece_name(piece.index)))
        if record is None or record.get("piece") != piece.to_record():
            return None
        return record

    def put(self, piece: Piece, result: Mapping[str, Any], attempts: int) -> None:
        record = {"piece": piece.to_record(), "attempts": attempts, "result": result}
        if self.folder.local is not None:
            # Another task that finished the same recording into this output folder removes the
            # cache it shared with this one: a missing folder is made again, not an output failure.
            self.folder.prepare()
        self.folder.write(_piece_name(piece.index), json.dumps(record, ensure_ascii=False))

    def complete(self, pieces: Sequence[Piece], samples: int) -> None:
        """Record the whole plan once decoding has finished, so a resume can skip decoding."""
        self._plan = {
            "fingerprint": self.fingerprint,
            "samples": samples,
            "pieces": [piece.to_record() for piece in pieces],
        }
        self.folder.write(PLAN_NAME, json.dumps(self._plan))

    def everything(self) -> tuple[list[tuple[Piece, dict[str, Any]]], int] | None:
        """Every piece's cached record and the sample count, when the plan is complete and all are cached."""
        planned = self._plan.get("pieces")
        if not planned:
            return None
        found = []
        for fields in planned:
            piece = Piece(**fields)
            record = self.get(piece)
            if record is None:
                return None
            found.append((piece, record))
        return found, int(self._plan["samples"])

    def remove(self) -> None:
        self.folder.remove_all()

    def _exists(self) -> bool:
        if self.folder.local is not None:
            import os

            return os.path.isdir(self.folder.local)
        with self.folder.guard("read", self.location):
            return bool(self.folder.remote.exists())


def _piece_name(index: int) -> str:
    return f"piece-{index:05d}.json"


def _loads(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
