"""KubeAI's real Model CRD, and what a kube-apiserver does with it: defaults, pruning, validation.

The schema part is checked with ``jsonschema``; the ``x-kubernetes-validations`` rules with
cel-python, transition rules (``oldSelf``) included on updates. Messages follow the API server's
``<path>: <reason>`` form so that tests and the sandbox can compare them with a real cluster's.
``jsonschema``, ``yaml`` and ``celpy`` are imported lazily: this module is only needed by the
sandbox and the tests.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

__all__ = ["CRD_FILE", "Cause", "ModelCRD", "model_crd"]

CRD_FILE = "kubeai.org_models.yaml"
_BLOCKING = (
    "FieldValueRequired",
    "FieldValueTypeInvalid",
    "FieldValueNotSupported",
    "FieldValueTooLong",
    "FieldValueTooMany",
)
_RULES_SKIPPED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)
_INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class Cause:
    """One reason the API server refuses an object (a ``StatusCause``).

    :param field: the JSON path, e.g. ``spec.url``.
    :param message: the human message, e.g. ``Invalid value: "ftp://x": url must start with ...``.
    :param reason: the Kubernetes cause type (``FieldValueInvalid``, ``FieldValueRequired`` ...).
    """

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class _Rule:
    rule: str
    message: str
    program: Any
    transition: bool


@dataclass
class ModelCRD:
    """The Model CRD's ``openAPIV3Schema`` with compiled CEL rules.

    :param definition: the parsed CustomResourceDefinition.
    """

    definition: dict[str, Any]
    _rules: dict[int, list[_Rule]] = field(default_factory=dict, repr=False)

    @property
    def version(self) -> dict[str, Any]:
        return next(v for v in self.definition["spec"]["versions"] if v.get("storage"))

    @property
    def schema(self) -> dict[str, Any]:
        return self.version["schema"]["openAPIV3Schema"]

    @cached_property
    def _validator(self) -> Any:
        import jsonschema

        return jsonschema.Draft7Validator(self.schema, format_checker=_format_checker())

    # -- defaulting and pruning --------------------------------------------------------------

    def apply_defaults(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Fill in schema defaults in place, as the API server does on create and update."""
        _default(self.schema, obj)
        return obj

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop fields the schema does not know (structural pruning); return their paths."""
        dropped: list[str] = []
        for key in ("spec", "status"):
            if isinstance(obj.get(key), dict):
                _prune(self.schema["properties"][key], obj[key], key, dropped)
        return dropped

    # -- validation --------------------------------------------------------------------------

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
        """Every reason the API server would refuse ``obj`` (after defaulting), or an empty list.

        :param obj: the whole object (apiVersion, kind, metadata, spec ...).
        :param old: the stored object on updates, for transition rules (``oldSelf``).
        """
        causes = self._schema_causes(obj)
        if any(c.reason in _BLOCKING for c in causes):
            # the rules could read a missing or mistyped field: v1.36 skips them all and says so
            causes.append(Cause("<nil>", f'Invalid value: "null": {_RULES_SKIPPED}'))
            return causes
        causes.extend(self._cel_causes(self.schema, obj, old, ""))
        return causes

    def _schema_causes(self, obj: dict[str, Any]) -> list[Cause]:
        import jsonschema

        causes = []
        for err in sorted(self._validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            path = _json_path(err.absolute_path)
            causes.append(_schema_cause(err, path, jsonschema))
        return causes

    def _cel_causes(self, schema: dict[str, Any], value: Any, old: Any, path: str) -> list[Cause]:
        causes: list[Cause] = []
        for rule in self._compiled(schema):
            if rule.transition and old is None:
                continue  # transition rules only run on updates where the old value exists
            ok, detail = _evaluate(rule, value, old)
            if not ok:
                # since v1.35 a simple value is shown, an object or a list not at all
                shown = f"{json.dumps(value)}: " if isinstance(value, str | int | float | bool) else ""
                suffix = f" ({detail})" if detail else ""
                causes.append(Cause(path, f"Invalid value: {shown}{rule.message}{suffix}"))
        if isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value and value[key] is not None:
                    old_sub = old.get(key) if isinstance(old, dict) else None
                    causes.extend(self._cel_causes(sub, value[key], old_sub, _join(path, key)))
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                causes.extend(self._cel_causes(schema["items"], item, None, f"{path}[{index}]"))
        return causes

    def _compiled(self, schema: dict[str, Any]) -> list[_Rule]:
        rules = schema.get("x-kubernetes-validations")
        if not rules:
            return []
        key = id(schema)
        if key not in self._rules:
            import celpy

            env = celpy.Environment()
            self._rules[key] = [
                _Rule(
                    rule=r["rule"],
                    message=r.get("message") or f"failed rule: {r['rule']}",
                    program=env.program(env.compile(r["rule"])),
                    transition="oldSelf" in r["rule"],
                )
                for r in rules
            ]
        return self._rules[key]


@cache
def model_crd() -> ModelCRD:
    """The packaged KubeAI Model CRD (parsed once)."""
    import yaml

    text = resources.files(__name__).joinpath(CRD_FILE).read_text(encoding="utf-8")
    return ModelCRD(yaml.safe_load(text))


def _format_checker() -> Any:
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, (low, high) in _INT_FORMATS.items():
        checker.checks(name)(lambda value, lo=low, hi=high: not isinstance(value, int) or lo <= value <= hi)
    return checker


def _schema_cause(err: Any, path: str, jsonschema: Any) -> Cause:
    value = err.instance
    shown = json.dumps(value) if isinstance(value, str | int | float | bool) else '"object"'
    kind = err.validator
    if kind == "required":
        missing = err.message.split("'")[1]
        return Cause(_join(path, missing), "Required value", "FieldValueRequired")
    if kind == "enum":
        allowed = ", ".join(json.dumps(v) for v in err.validator_value)
        return Cause(
            path, f"Unsupported value: {shown}: supported values: {allowed}", "FieldValueNotSupported"
        )
    if kind == "type":
        actual = json.dumps(_json_type(value))
        return Cause(
            path,
            f"Invalid value: {actual}: {path} in body must be of type {err.validator_value}: {actual}",
            "FieldValueTypeInvalid",
        )
    if kind == "minimum":
        return Cause(
            path,
            f"Invalid value: {shown}: {path} in body should be greater than or equal to {err.validator_value}",
        )
    if kind == "maxLength":
        return Cause(path, f"Too long: may not be more than {err.validator_value} bytes", "FieldValueTooLong")
    if kind == "maxItems":
        return Cause(
            path,
            f"Too many: {len(value)}: must have at most {err.validator_value} items",
            "FieldValueTooMany",
        )
    if kind == "pattern":
        return Cause(path, f"Invalid value: {shown}: {path} in body should match '{err.validator_value}'")
    if kind == "format":
        return Cause(path, f"Invalid value: {shown}: {path} in body must be of type {err.validator_value}")
    return Cause(path, f"Invalid value: {shown}: {err.message}")


def _json_type(value: Any) -> str:
    """The JSON type name the API server reports (Go's, not Python's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _evaluate(rule: _Rule, value: Any, old: Any) -> tuple[bool, str]:
    import celpy

    activation = {"self": celpy.json_to_cel(value)}
    if rule.transition:
        activation["oldSelf"] = celpy.json_to_cel(old)
    try:
        result = rule.program.evaluate(activation)
    except Exception as err:  # a CEL runtime error fails the rule, as in the API server
        return False, f"rule could not be evaluated: {err.args[0] if err.args else err}"
    if isinstance(result, celpy.CELEvalError):
        return False, f"rule could not be evaluated: {result.args[0] if result.args else result}"
    return bool(result), ""


def _default(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for sub_value in value.values():
                _default(extra, sub_value)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


def _prune(schema: dict[str, Any], value: Any, path: str, dropped: list[str]) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key in list(value):
                if key not in props:
                    dropped.append(_join(path, key))
                    del value[key]
                else:
                    _prune(props[key], value[key], _join(path, key), dropped)
        elif isinstance(extra, dict):
            for key, sub in value.items():
                _prune(extra, sub, _join(path, key), dropped)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _prune(schema["items"], item, f"{path}[{index}]", dropped)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path
