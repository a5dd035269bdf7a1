"""Template rendering that does not alter free text."""

from __future__ import annotations

from typing import Any


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
