"""The sandbox's etcd: Model objects with resourceVersions, a watch history, and field ownership.

Writes go through one pipeline, as in the API server: identity checks, status/spec isolation per
subresource, pruning, defaulting, validation (schema + CEL from the real CRD, transition rules on
updates), no-op detection (an unchanged object keeps its resourceVersion), generation bumps on
spec changes, then one watch event.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from local_kubeai import kube_errors
from local_kubeai.crd import Cause, ModelCRD
from local_kubeai.kube_errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

Key = tuple[str, str]
FieldPath = tuple[str, ...]

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_PART = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_SYSTEM_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_UNOWNED_ROOTS = ("apiVersion", "kind", "status")
_UNOWNED_METADATA = ("name", "namespace", *_SYSTEM_METADATA)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def leaf_paths(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Owned field paths of an object: dict keys recursively, lists and scalars as leaves."""
    out: dict[FieldPath, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            if not prefix and key in _UNOWNED_ROOTS:
                continue
            if prefix == ("metadata",) and key in _UNOWNED_METADATA:
                continue
            out.update(leaf_paths(value, (*prefix, key)))
    elif prefix:
        out[prefix] = obj
    return out


def _get(obj: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _delete(obj: dict[str, Any], path: FieldPath) -> None:
    parents = [obj]
    for key in path[:-1]:
        nxt = parents[-1].get(key)
        if not isinstance(nxt, dict):
            return
        parents.append(nxt)
    parents[-1].pop(path[-1], None)
    # drop maps the removal left empty, as structured-merge-diff does
    for depth in range(len(path) - 2, -1, -1):
        if parents[depth + 1] == {} and depth + 1 < len(parents):
            parents[depth].pop(path[depth], None)


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into ``base`` (maps merged, lists and scalars replaced); returns ``base``."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class _Missing:
    pass


@dataclass
class WriteOptions:
    """What a request asks of one write, beyond its body.

    :param dry_run: ``dryRun=All``: validate and answer, store nothing, send no event.
    :param field_validation: ``Strict`` (unknown fields refuse the write), ``Warn`` (dropped,
        each named in :attr:`warnings`) or ``Ignore`` (dropped silently); the API server's
        default, when a request names none, is ``Warn``.
    :param warnings: filled with the ``Warning`` header texts the answer carries.
    """

    dry_run: bool = False
    field_validation: str = "Ignore"
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    """One change in the history: the object after it, and before it (None on ADDED)."""

    rv: int
    kind: str
    obj: dict[str, Any]
    before: dict[str, Any] | None
    at: float


_MISSING = _Missing()


class ModelStore:
    """Models by (namespace, name), with a bounded event history for watches.

    The history is bounded twice, as etcd compaction and the API server's watch cache bound it:
    at most ``history`` events, and none older than ``history_seconds``. A watch, an exact list
    or a ``continue`` token from before that window gets 410 Expired.

    :param crd: the Model CRD used for pruning, defaults and validation.
    :param history: events kept at most.
    :param history_seconds: seconds an event is kept at most.
    """

    def __init__(self, crd: ModelCRD, history: int = 1000, history_seconds: float = 300.0) -> None:
        self.crd = crd
        self.changed = threading.Condition()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._owners: dict[Key, dict[FieldPath, str]] = {}
        self._rv = 0
        self._events: deque[Event] = deque()
        self._history = history
        self._history_seconds = history_seconds
        self._evicted_upto = 0

    # -- reads -------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.changed:
            return self._rv

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        with self.changed:
            obj = self._objects.get((namespace, name))
            if obj is None:
                raise kube_errors.not_found(name)
            return copy.deepcopy(obj)

    def find(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.changed:
            obj = self._objects.get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(
        self,
        namespace: str | None,
        predicate: Callable[[dict[str, Any]], bool] = lambda o: True,
        at: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Objects (sorted by namespace and name) now, or as they were at resourceVersion ``at``.

        :raises ApiError: 410 when ``at`` is older than the history kept.
        """
        with self.changed:
            self._evict()
            objects = self._objects if at is None or at >= self._rv else self._state_at(at)
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(objects.items())
                if (namespace is None or ns == namespace) and predicate(obj)
            ]
            return items, self._rv if at is None else min(at, self._rv)

    def _state_at(self, rv: int) -> dict[Key, dict[str, Any]]:
        if rv < self._evicted_upto:
            raise ApiError(410, "The resourceVersion for the provided list is too old.", reason="Expired")
        state = dict(self._objects)
        for event in reversed(self._events):
            if event.rv <= rv:
                break
            key = (event.obj["metadata"]["namespace"], event.obj["metadata"]["name"])
            if event.before is None:
                state.pop(key, None)
            else:
                state[key] = event.before
        return state

    def keys(self) -> list[Key]:
        with self.changed:
            return list(self._objects)

    # -- watch -------------------------------------------------------------------------------

    def watch_from(self, resource_version: int | None) -> tuple[list[tuple[int, str, dict[str, Any]]], int]:
        """Events after ``resource_version`` (None: synthetic ADDED of the current state).

        :raises ApiError: 410 when those events are no longer kept.
        """
        with self.changed:
            self._evict()
            if resource_version is None:
                added = [(self._rv, "ADDED", copy.deepcopy(o)) for _, o in sorted(self._objects.items())]
                return added, self._rv
            self._check_window(resource_version)
            return self._after(resource_version), self._rv

    def wait_for_events(self, after: int, timeout: float) -> list[tuple[int, str, dict[str, Any]]]:
        """Block up to ``timeout`` seconds for events newer than ``after``."""
        with self.changed:
            self.changed.wait_for(lambda: self._rv > after, timeout=timeout)
            self._evict()
            self._check_window(after)
            return self._after(after)

    def compact(self) -> None:
        """Forget the whole event history (as etcd compaction does): older watches get 410."""
        with self.changed:
            self._events.clear()
            self._evicted_upto = self._rv

    def _after(self, rv: int) -> list[tuple[int, str, dict[str, Any]]]:
        return [(e.rv, e.kind, e.obj) for e in self._events if e.rv > rv]

    def _check_window(self, rv: int) -> None:
        if rv < self._evicted_upto:
            raise ApiError(
                410, f"too old resource version: {rv} ({self._evicted_upto + 1})", reason="Expired"
            )

    def _evict(self) -> None:
        oldest = time.monotonic() - self._history_seconds
        while self._events and (len(self._events) > self._history or self._events[0].at < oldest):
            self._evicted_upto = self._events.popleft().rv

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, namespace: str, body: dict[str, Any], manager: str, options: WriteOptions | None = None
    ) -> dict[str, Any]:
        name = self._identity(namespace, body, None)
        with self.changed:
            if (namespace, name) in self._objects:
                raise kube_errors.already_exists(name)
            obj = copy.deepcopy(body)
            obj.pop("status", None)
            return self._commit(namespace, name, obj, None, manager, "Update", options=options)

    def replace(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any],
        manager: str,
        subresource: str | None = None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        self._identity(namespace, body, name)
        with self.changed:
            old = self._require(namespace, name)
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise kube_errors.stale(name)
            return self._commit(
                namespace, name, copy.deepcopy(body), old, manager, "Update", subresource, options=options
            )

    def mutate(
        self,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        manager: str,
        subresource: str | None = None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        """Read-modify-write under the lock (merge/json patch, scale, controller writes)."""
        with self.changed:
            old = self._require(namespace, name)
            new = change(copy.deepcopy(old))
            self._identity(namespace, new, name)
            wanted = new.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise kube_errors.stale(name)
            return self._commit(namespace, name, new, old, manager, "Update", subresource, options=options)

    def apply(
        self,
        namespace: str,
        name: str,
        config: dict[str, Any],
        manager: str,
        *,
        force: bool,
        options: WriteOptions | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply: returns the object and whether it was created.

        :raises ApiError: 500 "field not declared in schema" for a field the CRD does not know,
            as structured-merge-diff answers whatever ``fieldValidation`` says.
        """
        self._identity(namespace, config, name)
        if not config.get("apiVersion") or not config.get("kind"):
            raise ApiError(400, "apiVersion and kind are required in an apply configuration")
        config = copy.deepcopy(config)
        undeclared = self.crd.prune(copy.deepcopy(config))
        if undeclared:
            where = f"({namespace}/{name}; kubeai.org/v1, Kind=Model)"
            if len(undeclared) == 1:
                text = f".{undeclared[0]}: field not declared in schema"
            else:
                text = "errors:\n" + "\n".join(f"  .{p}: field not declared in schema" for p in undeclared)
            raise ApiError(500, f"failed to create typed patch object {where}: {text}", reason="")
        config.pop("status", None)
        with self.changed:
            old = self._objects.get((namespace, name))
            if old is None:
                return self._commit(namespace, name, config, None, manager, "Apply", options=options), True
            owners = self._owners.setdefault((namespace, name), {})
            wanted = leaf_paths(config)
            conflicts = [
                (path, owner)
                for path, value in wanted.items()
                for owner in [self._owner_of(owners, path)]
                if owner and owner != manager and _get(old, path) != value
            ]
            if conflicts and not force:
                causes = [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{o}"',
                        "field": "." + ".".join(p),
                    }
                    for p, o in conflicts
                ]
                text = "\n".join(f'- conflict with "{o}": .{".".join(p)}' for p, o in conflicts)
                raise ApiError(
                    409,
                    f"Apply failed with {len(conflicts)} conflict(s):\n{text}",
                    details={"name": name, "group": "kubeai.org", "kind": "models", "causes": causes},
                )
            new = copy.deepcopy(old)
            previously = {p for p, m in owners.items() if m == f"{manager}/Apply"}
            for path in previously - set(wanted):
                _delete(new, path)
            deep_merge(new, config)
            committed = self._commit(
                namespace, name, new, old, manager, "Apply", wanted_paths=set(wanted), options=options
            )
            return committed, False

    def delete(
        self,
        namespace: str,
        name: str,
        *,
        propagation: str = "Background",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete, as the API server does with no garbage collector running.

        ``Foreground`` and ``Orphan`` add their finalizer (``foregroundDeletion``, ``orphan``) and
        a deletionTimestamp: the Model stays until something removes the finalizers (on a real
        cluster, the garbage collector). An object with finalizers is only marked, whatever the
        policy. Returns the object and whether it is gone.

        :raises ApiError: 409 when a precondition (uid, resourceVersion) does not hold.
        """
        with self.changed:
            old = self._require(namespace, name)
            meta = old["metadata"]
            for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = (preconditions or {}).get(key)
                if wanted is not None and wanted != meta.get(key):
                    raise kube_errors.conflict(
                        name,
                        f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {meta.get(key, '')}",
                    )
            finalizers = list(meta.get("finalizers") or [])
            extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(propagation)
            if extra and extra not in finalizers:
                finalizers.append(extra)
            if not finalizers:
                gone = copy.deepcopy(old)
                if dry_run:
                    return gone, True
                del self._objects[(namespace, name)]
                self._owners.pop((namespace, name), None)
                self._rv += 1
                gone["metadata"]["resourceVersion"] = str(self._rv)
                self._record("DELETED", gone, old)
                return gone, True
            if "deletionTimestamp" in meta and finalizers == meta.get("finalizers"):
                return old, False
            marked = copy.deepcopy(old)
            marked["metadata"]["finalizers"] = finalizers
            marked["metadata"].setdefault("deletionTimestamp", now())
            marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            if dry_run:
                return marked, False
            self._rv += 1
            marked["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[(namespace, name)] = marked
            self._record("MODIFIED", copy.deepcopy(marked), old)
            return copy.deepcopy(marked), False

    # -- internals ---------------------------------------------------------------------------

    def _require(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get((namespace, name))
        if obj is None:
            raise kube_errors.not_found(name)
        return copy.deepcopy(obj)

    @staticmethod
    def _identity(namespace: str, body: dict[str, Any], name: str | None) -> str:
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        meta = body.get("metadata") or {}
        body_name = meta.get("name")
        if name is not None and body_name not in (None, name):
            raise ApiError(
                400, f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(
                400, "the namespace of the provided object does not match the namespace sent on the request"
            )
        if body.get("apiVersion") not in (None, "kubeai.org/v1") or body.get("kind") not in (None, "Model"):
            raise ApiError(
                400,
                f"the API version in the data ({body.get('apiVersion')}) and kind ({body.get('kind')}) do not match kubeai.org/v1 Model",
            )
        final = name or body_name
        if not final:
            raise ApiError(
                422,
                'Model.kubeai.org "" is invalid: metadata.name: Required value: name or generateName is required',
            )
        return str(final)

    @staticmethod
    def _owner_of(owners: dict[FieldPath, str], path: FieldPath) -> str | None:
        for owned, manager in owners.items():
            if owned == path or owned[: len(path)] == path or path[: len(owned)] == owned:
                return manager.split("/", 1)[0]
        return None

    def _commit(
        self,
        namespace: str,
        name: str,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        manager: str,
        operation: str,
        subresource: str | None = None,
        wanted_paths: set[FieldPath] | None = None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        options = options or WriteOptions()
        new.setdefault("apiVersion", "kubeai.org/v1")
        new.setdefault("kind", "Model")
        meta = new.setdefault("metadata", {})
        meta["name"], meta["namespace"] = name, namespace
        if old is not None:
            if subresource == "status":
                new = {**copy.deepcopy(old), "status": new.get("status", {})}
            else:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for key in _SYSTEM_METADATA:
                if key in old["metadata"]:
                    new["metadata"][key] = old["metadata"][key]
        self._unknown_fields(self.crd.prune(new), options)
        self.crd.apply_defaults(new)
        causes = self._metadata_causes(new["metadata"]) + self.crd.validate(new, old)
        if causes:
            raise kube_errors.invalid(name, causes)
        if old is not None and _comparable(new) == _comparable(old):
            return old  # a no-op write keeps the resourceVersion and sends no event
        if (
            old is not None
            and "deletionTimestamp" in old["metadata"]
            and not new["metadata"].get("finalizers")
        ):
            # the last finalizer removed from an object being deleted: it goes now
            if not options.dry_run:
                del self._objects[(namespace, name)]
                self._owners.pop((namespace, name), None)
                self._rv += 1
                new["metadata"]["resourceVersion"] = str(self._rv)
                self._record("DELETED", copy.deepcopy(new), old)
            return copy.deepcopy(new)
        if options.dry_run:
            owners_before = copy.deepcopy(self._owners.get((namespace, name)))
        self._update_owners((namespace, name), old, new, manager, operation, wanted_paths)
        meta = new["metadata"]
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        elif new.get("spec") != old.get("spec"):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["managedFields"] = self._managed_fields((namespace, name))
        if options.dry_run:
            # answered as it would be stored; a created object has no resourceVersion yet
            if owners_before is None:
                self._owners.pop((namespace, name), None)
            else:
                self._owners[(namespace, name)] = owners_before
            if old is None:
                meta.pop("resourceVersion", None)
            return copy.deepcopy(new)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._objects[(namespace, name)] = new
        self._record("ADDED" if old is None else "MODIFIED", copy.deepcopy(new), old)
        return copy.deepcopy(new)

    @staticmethod
    def _unknown_fields(dropped: list[str], options: WriteOptions) -> None:
        if not dropped or options.field_validation == "Ignore":
            return
        if options.field_validation == "Strict":
            text = ", ".join(f'unknown field "{p}"' for p in dropped)
            raise ApiError(400, f"strict decoding error: {text}", reason="BadRequest")
        options.warnings.extend(f'unknown field "{p}"' for p in dropped)

    def _update_owners(
        self,
        key: Key,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        manager: str,
        operation: str,
        wanted: set[FieldPath] | None,
    ) -> None:
        owners = self._owners.setdefault(key, {})
        before, after = leaf_paths(old or {}), leaf_paths(new)
        tag = f"{manager}/{operation}"
        for path in list(owners):
            if path not in after:
                del owners[path]
        if operation == "Apply" and wanted is not None:
            changed = wanted
        elif operation == "Apply":
            changed = set(after)
        else:
            changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
        for path in changed:
            for owned in [p for p in owners if p[: len(path)] == path or path[: len(p)] == p]:
                del owners[owned]
            owners[path] = tag

    def _managed_fields(self, key: Key) -> list[dict[str, Any]]:
        by_manager: dict[str, dict[str, Any]] = {}
        for path, tag in sorted(self._owners.get(key, {}).items()):
            tree = by_manager.setdefault(tag, {})
            for part in path:
                tree = tree.setdefault(f"f:{part}", {})
        return [
            {
                "manager": tag.split("/")[0],
                "operation": tag.split("/")[1],
                "apiVersion": "kubeai.org/v1",
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            }
            for tag, fields in sorted(by_manager.items())
        ]

    def _metadata_causes(self, meta: dict[str, Any]) -> list[Cause]:
        causes = []
        name = meta.get("name", "")
        if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            causes.append(
                Cause(
                    "metadata.name",
                    f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )
            )
        for key, value in (meta.get("labels") or {}).items():
            prefix, _, label = str(key).rpartition("/")
            if (
                not label
                or len(label) > 63
                or not _LABEL_PART.fullmatch(label)
                or (prefix and not _DNS_SUBDOMAIN.fullmatch(prefix))
            ):
                causes.append(
                    Cause(
                        "metadata.labels",
                        f"Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_PART.fullmatch(value):
                causes.append(
                    Cause(
                        "metadata.labels",
                        f"Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    )
                )
        return causes

    def _record(self, kind: str, obj: dict[str, Any], before: dict[str, Any] | None) -> None:
        self._events.append(Event(self._rv, kind, obj, copy.deepcopy(before), time.monotonic()))
        self._evict()
        self.changed.notify_all()


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for key in ("resourceVersion", "managedFields", "generation"):
        out["metadata"].pop(key, None)
    return out
