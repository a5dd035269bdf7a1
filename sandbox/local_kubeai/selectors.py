"""Kubernetes label and field selectors (the subset ``kubectl`` and clients send)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from local_kubeai.kube_errors import ApiError

Predicate = Callable[[Mapping[str, str]], bool]

_SET_EXPR = re.compile(r"\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*")


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _requirement(expr: str) -> Predicate:
    if match := _SET_EXPR.fullmatch(expr):
        key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in expr:
            key, value = (s.strip() for s in expr.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if expr.startswith("!"):
        key = expr[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[A-Za-z0-9./_-]+", expr):
        return lambda labels: expr in labels
    raise ApiError(400, f"unable to parse requirement: {expr!r}")


def label_selector(selector: str | None) -> Predicate:
    """A predicate over a label map for ``a=b,c!=d,e,!f,g in (x,y)``."""
    if not selector:
        return lambda labels: True
    requirements = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(req(labels) for req in requirements)


def _field_check(field: str, value: str, negate: bool) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: (obj["metadata"].get(field) == value) != negate


def field_selector(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over an object for ``metadata.name=x`` and ``metadata.namespace=y``."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in _split(selector):
        negate = "!=" in part
        key, value = (s.strip() for s in re.split(r"!=|==|=", part, maxsplit=1))
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(
                400, f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        checks.append(_field_check(key.split(".", 1)[1], value, negate))
    return lambda obj: all(check(obj) for check in checks)
