"""Escaping text from outside before it goes into a message."""

from __future__ import annotations

import pytest

from airflow_provider_kubeai_speech.text_safety import printable, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call\nFAKE LOG LINE", "call\\nFAKE LOG LINE"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("x\u2028y\u2029z\x85", "x\\u2028y\\u2029z\\x85"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("tab\tnul\x00del\x7f", "tab\\tnul\\x00del\\x7f"),
        ("Réunion 会议 🎙.wav", "Réunion 会议 🎙.wav"),
        ("C:\\calls\\a.wav", "C:\\calls\\a.wav"),
    ],
)
def test_printable_escapes_what_could_forge_a_log_line(text: str, expected: str) -> None:
    escaped = printable(text)
    assert escaped == expected
    assert escaped.splitlines() == [escaped]  # one line for every reader, str.splitlines included


def test_redact_replaces_every_secret_longest_first() -> None:
    assert redact("Bearer tok-123 and tok-123-long", ["tok-123", "tok-123-long", ""]) == "Bearer *** and ***"
