"""Template rendering that does not alter free text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_templated(value: Any) -> bool:
    """Whether ``value`` is only known once rendered: Jinja text, an ``XComArg``, or a list or
    mapping holding one. Such arguments are checked after rendering, the rest at construction."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(is_templated(item) for item in value)
    return hasattr(value, "resolve") and not hasattr(value, "protocol")  # XComArg, not ObjectStoragePath


class KeepTrailingNewlines:
    """Keep a string's trailing newline through Jinja (which drops one by default).

    File contents (``files``), prompts and hotwords must reach KubeAI exactly as written.
    Mixed into operators before ``BaseOperator``.
    """

    def render_template(
        self, content: Any, context: Any, jinja_env: Any = None, seen_oids: set[int] | None = None
    ) -> Any:
        rendered = super().render_template(content, context, jinja_env, seen_oids)  # type: ignore[misc]
        if (
            isinstance(content, str)
            and isinstance(rendered, str)
            and content.endswith("\n")
            and not rendered.endswith("\n")
        ):
            return rendered + "\n"
        return rendered
