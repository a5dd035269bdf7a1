"""Word error rate, on text normalised for case and punctuation (Whisper writes both)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEEP = re.compile(r"[^a-z0-9' ]+")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation (``Monday,`` and ``monday`` are the same word)."""
    spaced = text.lower().replace("-", " ")
    return [w.strip("'") for w in _KEEP.sub(" ", spaced).split() if w.strip("'")]


@dataclass(frozen=True)
class Errors:
    """Edit operations turning the reference into the hypothesis."""

    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def rate(self) -> float:
        """Word error rate, 0..1 (can exceed 1 with many insertions)."""
        return (self.substitutions + self.deletions + self.insertions) / max(1, self.reference_words)


def errors(reference: str, hypothesis: str) -> Errors:
    """Levenshtein alignment of normalised words, counted by kind."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    # each cell: (cost, substitutions, deletions, insertions)
    row = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i, word in enumerate(ref, 1):
        new = [(i, 0, i, 0)]
        for j, heard in enumerate(hyp, 1):
            diag = row[j - 1]
            if word == heard:
                best = diag
            else:
                sub = (diag[0] + 1, diag[1] + 1, diag[2], diag[3])
                dele = (row[j][0] + 1, row[j][1], row[j][2] + 1, row[j][3])
                ins = (new[j - 1][0] + 1, new[j - 1][1], new[j - 1][2], new[j - 1][3] + 1)
                best = min(sub, dele, ins)
            new.append(best)
        row = new
    _, s, d, n = row[-1]
    return Errors(s, d, n, len(ref))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference``, case and punctuation ignored."""
    return errors(reference, hypothesis).rate
