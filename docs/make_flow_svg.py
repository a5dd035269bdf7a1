"""Writes docs/_static/flow.svg: serve -> wait -> transcribe -> teardown, and what each step does to
the KubeAI Model. Plain SVG (no Graphviz needed); run ``python docs/make_flow_svg.py`` after editing
the steps, and commit the result (``make docs`` only copies it)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

# step | operator | what it does to the Model (one box each, lines split at " / ")
TABLE = """
check inputs | count_inputs (short-circuit) | lists the day's recordings; / none: every later step / is skipped, nothing served
serve | ServeSpeechModelOperator | server-side apply of the Model / (created, or updated in place); / minReplicas held at replicas
wait | SpeechModelReadySensor | watches status.replicas.ready / until min_ready_replicas; / deferrable: no worker slot
transcribe | InvokeSpeechOperator | streams each recording to / /openai/v1/audio/transcriptions; / Model unchanged, manifest grows
teardown | ScaleSpeechModelOperator | replicas 0, minReplicas given back / (cache kept); or Delete...: / Model and cache removed
"""
STEPS = [
    (title, cls, lines.split(" / "))
    for title, cls, lines in ([cell.strip() for cell in row.split("|")] for row in TABLE.strip().splitlines())
]
BOX_W, BOX_H, GAP, PAD = 224, 128, 30, 16
WIDTH = PAD * 2 + len(STEPS) * BOX_W + (len(STEPS) - 1) * GAP
HEIGHT = PAD * 2 + BOX_H + 30


def svg() -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
        '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    colours = ["#eeeeee", "#dcecf9", "#e3f4e1", "#e8e0f5", "#f3e3e3"]  # the operators' ui_color
    for index, (title, cls, lines) in enumerate(STEPS):
        x = PAD + index * (BOX_W + GAP)
        y = PAD
        parts.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{colours[index]}" '
            'stroke="#555" stroke-width="1.2"/>'
        )
        parts.append(
            f'<text x="{x + BOX_W / 2}" y="{y + 24}" text-anchor="middle" font-size="16" '
            f'font-weight="bold">{escape(title)}</text>'
        )
        parts.append(
            f'<text x="{x + BOX_W / 2}" y="{y + 44}" text-anchor="middle" font-size="11" '
            f'font-family="DejaVu Sans Mono, monospace" fill="#333">{escape(cls)}</text>'
        )
        for row, line in enumerate(lines):
            parts.append(
                f'<text x="{x + BOX_W / 2}" y="{y + 70 + row * 17}" text-anchor="middle" '
                f'font-size="11.5">{escape(line)}</text>'
            )
        if index:
            parts.append(
                f'<line x1="{x - GAP + 2}" y1="{y + BOX_H / 2}" x2="{x - 2}" y2="{y + BOX_H / 2}" '
                'stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - PAD + 4}" font-size="11.5" fill="#444">The teardown runs '
        "whatever happened before it (trigger_rule all_done, as_teardown): a failed batch still gives "
        "the capacity back.</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "_static" / "flow.svg"
    target.write_text(svg())
    print(f"wrote {target}")
