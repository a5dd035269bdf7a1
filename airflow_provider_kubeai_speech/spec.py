"""The speech model: DigitalHub kubeai-speech parameters in, an exact KubeAI ``Model`` out.

:class:`SpeechModelSpec` is the single source of truth for what a speech model is. It accepts every
parameter DigitalHub's kubeai-speech function documents, maps each one to its KubeAI field or refuses it with the reason and
the place where that setting lives instead, and checks every rule of KubeAI's CRD (schema and CEL)
before any cluster call. This module imports no Kubernetes code; of Airflow only the exception base
that :mod:`.exceptions` builds the provider's hierarchy on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError

__all__ = [
    "API_VERSION",
    "ENGINE",
    "FEATURE",
    "KIND",
    "MAX_MODEL_NAME_LENGTH",
    "REFUSED_PARAMETERS",
    "Adapter",
    "EnvVar",
    "LoadBalancing",
    "ModelFile",
    "PrefixHash",
    "Scaling",
    "SpeechModelSpec",
    "SpeechModelSpecError",
    "build_speech_model_spec",
    "check_update",
    "refuse_unsupported",
    "require_model_name",
    "whole_number",
]

GROUP = "kubeai.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Model"
PLURAL = "models"
ENGINE = "FasterWhisper"
FEATURE = "SpeechToText"
DIGITALHUB_KIND = "kubeai-speech"
DESCRIPTION_ANNOTATION = "kubeai-speech.airflow.apache.org/description"

MAX_MODEL_NAME_LENGTH = 40
MAX_FILES = 10
MAX_FILE_CONTENT = 100_000
MAX_FILE_PATH = 1024
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

#: URL schemes KubeAI's CRD accepts, and which of them the FasterWhisper engine can load.
CRD_URL_SCHEMES = ("hf://", "pvc://", "ollama://", "s3://", "gs://", "oss://")
CACHE_PROFILE_URL_SCHEMES = ("hf://", "s3://", "gs://", "oss://")
CACHE_PROFILE_REQUIRED_SCHEMES = ("gs://", "oss://")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_ADAPTER_NAME = re.compile(r"[a-z0-9-]+")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)")
_RESOURCE_PROFILE_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
# DigitalHub's store:// form: DigitalHub's own artifact store, resolved by DigitalHub, not by KubeAI.
_DIGITALHUB_STORE_URL = re.compile(r"^store://([^/]+)/model/huggingface/.+")
_HF_REPO = re.compile(r"hf://[A-Za-z0-9][-A-Za-z0-9_.]*/[A-Za-z0-9][-A-Za-z0-9_.]*(@[^\s]+)?")

_RESOURCE_PROFILE_FIX = (
    "Fix: KubeAI sets scheduling and resources per resource profile in its Helm values "
    "(resourceProfiles.<name>.nodeSelector / affinity / tolerations / requests / limits / "
    "runtimeClassName); choose that profile with profile=<name> and processors=<count>."
)

#: DigitalHub kubeai-speech parameters that KubeAI cannot express on a Model, with the reason and where to set them.
REFUSED_PARAMETERS: dict[str, str] = {
    "node_selector": f"a KubeAI Model has no per-model node selector. {_RESOURCE_PROFILE_FIX}",
    "affinity": f"a KubeAI Model has no per-model affinity. {_RESOURCE_PROFILE_FIX}",
    "tolerations": f"a KubeAI Model has no per-model tolerations. {_RESOURCE_PROFILE_FIX}",
    "resources": (
        "a KubeAI Model takes no resource requests/limits; they come from the resource profile "
        "(Helm values resourceProfiles.<name>.requests/limits) multiplied by processors. Fix: use "
        "profile=<name> and processors=<count>, e.g. profile='cpu', processors=2 -> 'cpu:2'."
    ),
    "volumes": (
        "a KubeAI Model cannot mount volumes. Fix: put small config files in files=[{path, content}], "
        "load weights from a pvc:// url, or use cache_profile for a shared model cache."
    ),
    "service_type": (
        "KubeAI serves every Model through its own 'kubeai' Service (port 80, path /openai/v1); "
        "there is no Service per Model. Fix: expose that Service (Helm values) and point the "
        "connection's host at it."
    ),
    "service_name": (
        "KubeAI serves every Model through its own 'kubeai' Service and routes by the 'model' "
        "request field; there is no Service per Model. Fix: drop it; requests address the Model "
        "by model_name."
    ),
    "uuid": (
        "it is a DigitalHub object id; a KubeAI Model is identified by model_name within a "
        "namespace. Fix: remove it, or record it with labels={'uuid': ...}."
    ),
    "embedded": "it is a DigitalHub project setting with no KubeAI meaning. Fix: remove it.",
    "project": (
        "it is a DigitalHub project name; KubeAI scopes Models by namespace. Fix: use the namespace "
        "argument (or the connection's namespace), or record it with labels={'project': ...}."
    ),
}


class SpeechModelSpecError(KubeAISpeechError, ValueError):
    """A speech model specification KubeAI would refuse (or could not honour).

    Each line of the message names the parameter, the bad value and the fix.

    :param problems: one ``(field, message)`` pair per problem.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{field}: {message}" if field else message for field, message in problems]
        super().__init__("Invalid KubeAI speech model specification:\n  " + "\n  ".join(lines))


def _fail(message: str, **context: Any) -> PydanticCustomError:
    # Formatted here (not by pydantic) so that '!r' works and user text with braces is left alone.
    return PydanticCustomError("kubeai_speech", message.format(**context) if context else message)


def _at_least(minimum: int, maximum: int, kubeai_field: str) -> AfterValidator:
    def check(value: int | None) -> int | None:
        if value is not None and not minimum <= value <= maximum:
            raise _fail(
                "{value} is out of range: KubeAI's {kubeai_field} must be between {minimum} "
                "and {maximum}. Fix: use a whole number in that range.",
                value=value,
                kubeai_field=kubeai_field,
                minimum=minimum,
                maximum=maximum,
            )
        return value

    return AfterValidator(check)


def _strict_int(value: Any) -> Any:
    # Templated arguments arrive as strings ("2"); floats like 1.5 must not be truncated silently.
    if isinstance(value, bool):
        raise _fail("{value!r} is a boolean, not a whole number. Fix: give an integer.", value=value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return value


Int32 = Annotated[int, BeforeValidator(_strict_int)]


def _to_env_value(value: Any) -> Any:
    if isinstance(value, bool):
        raise _fail(
            "{value!r} is a boolean; Kubernetes environment values are strings and 'True' vs "
            "'true' matters to programs. Fix: quote the value you mean, e.g. 'true'.",
            value=value,
        )
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_to_env_value)]


class _Strict(BaseModel):
    """Refuses unknown keys with a 'did you mean' hint instead of dropping them silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    extra_known_keys: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known: set[str] = set()
        for name, field in cls.model_fields.items():
            known.add(name)
            if isinstance(field.validation_alias, AliasChoices):
                known.update(str(choice) for choice in field.validation_alias.choices)
        known.update(cls.extra_known_keys)
        unknown = [key for key in data if key not in known]
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known parameters: {', '.join(sorted(known))}"
            raise _fail(
                "unknown parameter {key!r}: KubeAI would drop it silently. Fix: {hint}",
                key=key,
                hint=hint,
            )
        return data


class PrefixHash(_Strict):
    """Settings of the ``PrefixHash`` load-balancing strategy (DigitalHub ``scaling.load_balancing.prefix_hash``).

    :param mean_load_factor: KubeAI ``meanLoadFactor`` (>= 100, KubeAI default 125).
    :param replication: KubeAI ``replication`` (virtual nodes per endpoint; immutable; default 256).
    :param prefix_char_length: KubeAI ``prefixCharLength`` (default 100).
    """

    mean_load_factor: Annotated[Int32 | None, _at_least(100, INT32_MAX, "meanLoadFactor")] = None
    replication: Annotated[Int32 | None, _at_least(1, INT32_MAX, "replication")] = None
    prefix_char_length: Annotated[Int32 | None, _at_least(1, INT32_MAX, "prefixCharLength")] = None

    def to_kubeai(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.mean_load_factor is not None:
            out["meanLoadFactor"] = self.mean_load_factor
        if self.replication is not None:
            out["replication"] = self.replication
        if self.prefix_char_length is not None:
            out["prefixCharLength"] = self.prefix_char_length
        return out


class LoadBalancing(_Strict):
    """How KubeAI spreads requests over replicas (DigitalHub ``scaling.load_balancing``).

    :param strategy: ``"LeastLoad"`` (KubeAI default) or ``"PrefixHash"``.
    :param prefix_hash: settings used by the ``PrefixHash`` strategy.
    """

    strategy: Literal["LeastLoad", "PrefixHash"] | None = None
    prefix_hash: PrefixHash | None = None

    def to_kubeai(self) -> dict[str, Any]:
        # camelCase on the wire: DigitalHub sent snake_case here and the API server pruned it.
        out: dict[str, Any] = {}
        if self.strategy is not None:
            out["strategy"] = self.strategy
        if self.prefix_hash is not None:
            out["prefixHash"] = self.prefix_hash.to_kubeai()
        return out


class Scaling(_Strict):
    """Replica count and autoscaling (DigitalHub ``scaling``).

    :param replicas: KubeAI ``replicas`` (the desired count; the autoscaler moves it within
        ``[min_replicas, max_replicas]`` unless ``autoscaling_disabled``).
    :param min_replicas: KubeAI ``minReplicas`` (>= 0; 0 allows scale to zero). Defaults to 0.
    :param max_replicas: KubeAI ``maxReplicas`` (>= 1, >= ``min_replicas``).
    :param autoscaling_disabled: KubeAI ``autoscalingDisabled``.
    :param target_requests: KubeAI ``targetRequests`` (>= 1, KubeAI default 100). DigitalHub documents
        it as ``target_request``; both names are accepted (DigitalHub silently dropped it).
    :param scale_down_delay_seconds: KubeAI ``scaleDownDelaySeconds`` (>= 0, KubeAI default 30).
    :param load_balancing: KubeAI ``loadBalancing``.
    """

    replicas: Annotated[Int32 | None, _at_least(0, INT32_MAX, "replicas")] = None
    min_replicas: Annotated[Int32 | None, _at_least(0, INT32_MAX, "minReplicas")] = None
    max_replicas: Annotated[Int32 | None, _at_least(1, INT32_MAX, "maxReplicas")] = None
    autoscaling_disabled: bool | None = None
    target_requests: Annotated[Int32 | None, _at_least(1, INT32_MAX, "targetRequests")] = Field(
        default=None, validation_alias=AliasChoices("target_requests", "target_request")
    )
    scale_down_delay_seconds: Annotated[Int32 | None, _at_least(0, INT64_MAX, "scaleDownDelaySeconds")] = None
    load_balancing: LoadBalancing | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_spelling_of_target_requests(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "target_request" in data and "target_requests" in data:
            if data["target_request"] != data["target_requests"]:
                raise _fail(
                    "target_request={a!r} and target_requests={b!r} disagree. Fix: give only "
                    "target_requests (target_request is DigitalHub's spelling of the same field).",
                    a=data["target_request"],
                    b=data["target_requests"],
                )
            data = {k: v for k, v in data.items() if k != "target_request"}
        return data

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Scaling:
        if self.max_replicas is not None and (self.min_replicas or 0) > self.max_replicas:
            raise _fail(
                "min_replicas={min} is above max_replicas={max} (KubeAI: minReplicas should be "
                "less than or equal to maxReplicas). Fix: lower min_replicas or raise max_replicas.",
                min=self.min_replicas,
                max=self.max_replicas,
            )
        return self


class ModelFile(_Strict):
    """A file KubeAI writes into the model server's container (DigitalHub ``files`` item).

    :param path: absolute path without ``:`` (at most 1024 characters).
    :param content: the file's text (at most 100000 characters).
    """

    path: str
    content: str

    @model_validator(mode="after")
    def _check(self) -> ModelFile:
        if not self.path.startswith("/") or ":" in self.path:
            raise _fail(
                "path {path!r} is not allowed: KubeAI needs an absolute path starting with '/' "
                "and without ':'. Fix: use e.g. '/config/{base}'.",
                path=self.path,
                base=self.path.rsplit("/", 1)[-1].replace(":", "_") or "file.txt",
            )
        if len(self.path) > MAX_FILE_PATH:
            raise _fail(
                "path is {n} characters long; KubeAI allows at most {m}. Fix: shorten it.",
                n=len(self.path),
                m=MAX_FILE_PATH,
            )
        if len(self.content) > MAX_FILE_CONTENT:
            raise _fail(
                "content of {path!r} is {n} characters; KubeAI allows at most {m}. Fix: ship large "
                "files with the image or a pvc:// volume instead.",
                path=self.path,
                n=len(self.content),
                m=MAX_FILE_CONTENT,
            )
        return self


class EnvVar(_Strict):
    """One item of DigitalHub's ``envs`` list (Kubernetes ``EnvVar`` form, literal values only).

    :param name: variable name.
    :param value: its value.
    """

    extra_known_keys: ClassVar[tuple[str, ...]] = ("value_from", "valueFrom")

    name: str
    value: EnvValue = ""

    @model_validator(mode="before")
    @classmethod
    def _refuse_value_from(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and ("value_from" in data or "valueFrom" in data):
            raise _fail(
                "env var {name!r} uses valueFrom, which a KubeAI Model cannot express (its env is "
                "a map of plain strings). Fix: put the value in a Secret and list it in secrets=[...] "
                "(mounted with envFrom).",
                name=data.get("name"),
            )
        return data


class Adapter(_Strict):
    """A DigitalHub adapter (``{"name", "url"}``). KubeAI refuses adapters on speech models.

    :param name: adapter name.
    :param url: adapter location.
    """

    name: str
    url: str


def _check_env_name(name: str) -> str:
    if not name or "=" in name or not name.isprintable():
        raise _fail(
            "environment variable name {name!r} is not valid in Kubernetes. Fix: use a non-empty "
            "name without '=', e.g. 'WHISPER_BEAM_SIZE'.",
            name=name,
        )
    return name


def _labels_from_digitalhub(value: Any) -> Any:
    # DigitalHub's labels are a list of strings (tags); Kubernetes labels are a key -> value map.
    if isinstance(value, list | tuple):
        labels: dict[str, str] = {}
        for item in value:
            if not isinstance(item, str):
                raise _fail("label {item!r} is not a string. Fix: use 'key=value' or 'tag'.", item=item)
            key, sep, val = item.partition("=")
            labels[key.strip()] = val.strip() if sep else "true"
        return labels
    return value


def _check_label_key(key: str) -> None:
    prefix, sep, name = key.rpartition("/")
    bad = (
        not _LABEL_NAME.fullmatch(name)
        or len(name) > 63
        or (sep and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)))
    )
    if bad:
        raise _fail(
            "label key {key!r} is not a valid Kubernetes label key. Fix: use up to 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit, optionally "
            "behind a DNS prefix and '/' (e.g. 'team' or 'example.com/team').",
            key=key,
        )


def _check_label_value(key: str, value: str) -> None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        raise _fail(
            "label {key!r} has value {value!r}, which is not a valid Kubernetes label value. Fix: "
            "use up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or "
            "digit (put free text in description instead).",
            key=key,
            value=value,
        )


def _check_labels(labels: dict[str, str] | None) -> dict[str, str] | None:
    for key, value in (labels or {}).items():
        _check_label_key(key)
        _check_label_value(key, value)
    return labels


def _check_url(value: str) -> str:
    """A field check (not a model check), so a bad url is reported beside every other bad field."""
    url = value.strip()
    if url != value or not url:
        raise _fail(
            "url {url!r} is empty or has surrounding spaces. Fix: give e.g. "
            "'hf://Systran/faster-whisper-small'.",
            url=value,
        )
    if _DIGITALHUB_STORE_URL.match(url) or url.startswith("store://"):
        raise _fail(
            "url {url!r} points into DigitalHub's artifact store, which KubeAI cannot read. "
            "Fix: give the model's own location, e.g. 'hf://Systran/faster-whisper-small' or "
            "'s3://bucket/path'.",
            url=url,
        )
    if url.startswith("ollama://"):
        raise _fail(
            "url {url!r} is an Ollama model; speech models run on KubeAI's FasterWhisper "
            "engine, which loads hf://, s3://, pvc://, gs:// or oss:// urls. Fix: use e.g. "
            "'hf://Systran/faster-whisper-small'.",
            url=url,
        )
    scheme = next((s for s in CRD_URL_SCHEMES if url.startswith(s)), None)
    if scheme is None:
        raise _fail(
            "url {url!r} has an unsupported scheme: KubeAI needs hf://, pvc://, s3://, gs:// "
            "or oss:// (DigitalHub's pattern also let 's://', 'h://' and 'pv://' through; "
            "KubeAI refuses them). Fix: e.g. 'hf://Systran/faster-whisper-small'.",
            url=url,
        )
    if len(url) == len(scheme) or any(ch.isspace() for ch in url):
        raise _fail(
            "url {url!r} names no model after {scheme}. Fix: e.g. {example!r}.",
            url=url,
            scheme=scheme,
            example=f"{scheme}{'Systran/faster-whisper-small' if scheme == 'hf://' else 'bucket/path'}",
        )
    if scheme == "hf://" and not _HF_REPO.fullmatch(url):
        raise _fail(
            "url {url!r} is not a Hugging Face repository: expected hf://<owner>/<repo>. "
            "Fix: e.g. 'hf://Systran/faster-whisper-small'.",
            url=url,
        )
    return value


def check_model_name(name: str) -> str:
    """Check a KubeAI Model name: a DNS-1123 label of at most 40 characters.

    :param name: the candidate name.
    :return: the name, unchanged.
    """
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise _fail(
            "{name!r} is {n} characters long; KubeAI allows at most {m} (name must not exceed 40 "
            "characters). Fix: shorten it, e.g. {short!r}.",
            name=name,
            n=len(name),
            m=MAX_MODEL_NAME_LENGTH,
            short=name[:MAX_MODEL_NAME_LENGTH].rstrip("-"),
        )
    if not _DNS_LABEL.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "my-speech-model"
        raise _fail(
            "{name!r} is not a valid Model name: Kubernetes needs a DNS-1123 label (lower-case "
            "letters, digits and '-', starting and ending with a letter or digit). Fix: use e.g. "
            "{suggestion!r}.",
            name=name,
            suggestion=suggestion[:MAX_MODEL_NAME_LENGTH].strip("-"),
        )
    return name


class SpeechModelSpec(_Strict):
    """A speech-to-text model served by KubeAI (engine ``FasterWhisper``, feature ``SpeechToText``).

    Built from DigitalHub's kubeai-speech parameter names with :meth:`model_validate` (or :func:`build_speech_model_spec`,
    which raises :class:`SpeechModelSpecError`), rendered with :meth:`to_manifest`.

    :param model_name: the KubeAI Model name (DNS-1123 label, <= 40 characters); requests address the
        model by it. DigitalHub's function ``name`` is used when ``model_name`` is not given.
    :param url: where the weights are: ``hf://owner/repo``, ``s3://...``, ``pvc://...``, or ``gs://`` /
        ``oss://`` with a ``cache_profile``. DigitalHub's ``store://`` (DigitalHub store) and ``ollama://``
        (OLlama engine) are refused with the reason.
    :param image: KubeAI ``image`` (overrides the engine's default image).
    :param adapters: refused when non-empty: KubeAI only supports adapters with the VLLM engine.
    :param env: KubeAI ``env`` (a map); merged with ``envs``.
    :param envs: DigitalHub's list form ``[{"name", "value"}]``, merged into ``env``.
    :param args: KubeAI ``args`` passed to the model server.
    :param files: KubeAI ``files`` (at most 10, unique absolute paths without ':').
    :param cache_profile: KubeAI ``cacheProfile`` (only with hf/s3/gs/oss urls; immutable).
    :param profile: resource profile name (DigitalHub task ``profile``), default ``"cpu"``.
    :param processors: resource profile count (DigitalHub run ``processors``), default 1:
        ``resourceProfile = "<profile>:<processors>"``.
    :param replicas: KubeAI ``replicas`` (DigitalHub task parameter; same as ``scaling.replicas``).
    :param scaling: replica and autoscaling settings, see :class:`Scaling`.
    :param secrets: Secret names, mounted with ``envFrom: [{secretRef: {name}}]``.
    :param labels: Kubernetes labels, a map or DigitalHub's list of ``"key=value"`` / ``"tag"`` strings.
    :param description: free text, stored in an annotation (KubeAI has no description field).
    :param priority_class_name: KubeAI ``priorityClassName``.
    :param name: DigitalHub's function name (used as ``model_name`` when that is absent).
    :param kind: DigitalHub's function kind; must be ``"kubeai-speech"`` if given.
    :param action: DigitalHub's task action; must be ``"serve"`` if given.

    DigitalHub kubeai-speech parameters with no per-model KubeAI field (``node_selector``, ``volumes``, ``resources``,
    ``affinity``, ``tolerations``, ``service_type``, ``service_name``, ``uuid``, ``embedded``,
    ``project``) are refused with the reason and where to configure them instead.
    """

    extra_known_keys: ClassVar[tuple[str, ...]] = tuple(REFUSED_PARAMETERS)

    model_name: Annotated[str, AfterValidator(check_model_name)]
    url: Annotated[str, AfterValidator(_check_url)]
    image: str | None = None
    adapters: list[Adapter] | None = None
    env: dict[Annotated[str, AfterValidator(_check_env_name)], EnvValue] | None = None
    envs: list[EnvVar] | None = None
    args: list[str] | None = None
    files: Annotated[list[ModelFile] | None, Field(max_length=None)] = None
    cache_profile: str | None = None
    profile: str = "cpu"
    processors: Annotated[Int32, _at_least(1, INT32_MAX, "resourceProfile count")] = 1
    replicas: Annotated[Int32 | None, _at_least(0, INT32_MAX, "replicas")] = None
    scaling: Scaling | None = None
    secrets: list[str] | None = None
    labels: Annotated[
        dict[str, str] | None, BeforeValidator(_labels_from_digitalhub), AfterValidator(_check_labels)
    ] = None
    description: str | None = None
    priority_class_name: str | None = None
    name: str | None = None
    kind: str | None = None
    action: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _digitalhub_compatibility(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        refusal = _refusal(data)
        if refusal is not None:
            raise _fail("{refusal}", refusal=refusal[1])
        data = {k: v for k, v in data.items() if k not in REFUSED_PARAMETERS}
        if data.get("model_name") in (None, "") and data.get("name"):
            data["model_name"] = data["name"]
        return data

    @model_validator(mode="after")
    def _check_model(self) -> SpeechModelSpec:
        self._check_digitalhub_identity()
        self._check_cache_profile()
        self._check_resource_profile()
        self._check_adapters()
        self._check_files()
        self._check_secrets()
        self._check_env_merge()
        self._check_replicas()
        return self

    def _check_digitalhub_identity(self) -> None:
        if self.kind is not None and self.kind != DIGITALHUB_KIND:
            raise _fail(
                "kind={kind!r}: this provider serves DigitalHub's function kind 'kubeai-speech' (KubeAI "
                "engine FasterWhisper, feature SpeechToText). Fix: drop kind or set 'kubeai-speech'.",
                kind=self.kind,
            )
        if self.action is not None and self.action != "serve":
            raise _fail(
                "action={action!r}: ServeSpeechModelOperator performs DigitalHub's 'serve' action "
                "only. Fix: drop action; transcribe with InvokeSpeechOperator.",
                action=self.action,
            )

    def _check_cache_profile(self) -> None:
        if self.cache_profile is not None:
            if not self.cache_profile:
                raise _fail("cache_profile is empty. Fix: name a cache profile or leave it unset.")
            if not self.url.startswith(CACHE_PROFILE_URL_SCHEMES):
                raise _fail(
                    "cache_profile={cp!r} cannot be used with url {url!r}: KubeAI supports a "
                    "cacheProfile only with hf://, s3://, gs:// or oss:// urls. Fix: drop "
                    "cache_profile (a pvc:// volume is already persistent) or change the url.",
                    cp=self.cache_profile,
                    url=self.url,
                )
        elif self.url.startswith(CACHE_PROFILE_REQUIRED_SCHEMES):
            raise _fail(
                "url {url!r} needs a cache_profile: KubeAI only loads gs:// and oss:// urls "
                "through a model cache. Fix: set cache_profile to one of the cacheProfiles in "
                "KubeAI's Helm values.",
                url=self.url,
            )

    def _check_resource_profile(self) -> None:
        if not _RESOURCE_PROFILE_NAME.fullmatch(self.profile):
            raise _fail(
                "profile {profile!r} is not a resource profile name (KubeAI's resourceProfile is "
                "'<profile>:<count>'). Fix: give only the profile name, e.g. profile='cpu' and "
                "processors=2.",
                profile=self.profile,
            )

    def _check_adapters(self) -> None:
        if self.adapters:
            raise _fail(
                "adapters are not supported for speech models: KubeAI only supports adapters with "
                "the VLLM engine (CRD: 'adapters only supported with VLLM engine.'), and "
                "speech-to-text runs on FasterWhisper. Fix: drop adapters, or serve a model with "
                "the fine-tune merged in (e.g. its own hf:// repository)."
            )

    def _check_files(self) -> None:
        files = self.files or []
        if len(files) > MAX_FILES:
            raise _fail(
                "files: {n} given; KubeAI allows at most {m}. Fix: merge them or bake them into the image.",
                n=len(files),
                m=MAX_FILES,
            )
        seen: set[str] = set()
        for item in files:
            if item.path in seen:
                raise _fail(
                    "files: path {path!r} appears twice (KubeAI: all file paths must be unique). Fix: "
                    "merge the two contents or rename one.",
                    path=item.path,
                )
            seen.add(item.path)

    def _check_secrets(self) -> None:
        for secret in self.secrets or []:
            if len(secret) > 253 or not _DNS_SUBDOMAIN.fullmatch(secret):
                raise _fail(
                    "secrets: {secret!r} is not a valid Kubernetes Secret name. Fix: use "
                    "lower-case letters, digits, '-' and '.', e.g. 'whisper-credentials'.",
                    secret=secret,
                )

    def _check_env_merge(self) -> None:
        env = dict(self.env or {})
        for item in self.envs or []:
            _check_env_name(item.name)
            if item.name in env and env[item.name] != item.value:
                raise _fail(
                    "env/envs: variable {name!r} is set twice with different values (env: "
                    "{a!r}, envs: {b!r}). Fix: keep one of them.",
                    name=item.name,
                    a=env[item.name],
                    b=item.value,
                )
            env[item.name] = item.value

    def _check_replicas(self) -> None:
        scaled = self.scaling.replicas if self.scaling else None
        if self.replicas is not None and scaled is not None and self.replicas != scaled:
            raise _fail(
                "replicas={a} and scaling.replicas={b} disagree; both set KubeAI's replicas. "
                "Fix: give only one.",
                a=self.replicas,
                b=scaled,
            )

    # -- rendering ---------------------------------------------------------------------------

    @property
    def resource_profile(self) -> str:
        """KubeAI ``resourceProfile``: ``"<profile>:<processors>"``."""
        return f"{self.profile}:{self.processors}"

    @property
    def merged_env(self) -> dict[str, str]:
        """``env`` and DigitalHub's ``envs`` list, merged."""
        env = dict(self.env or {})
        env.update({item.name: item.value for item in self.envs or []})
        return env

    @property
    def desired_replicas(self) -> int | None:
        """The ``replicas`` value, from the task parameter or ``scaling.replicas``."""
        if self.replicas is not None:
            return self.replicas
        return self.scaling.replicas if self.scaling else None

    def kubeai_spec(self) -> dict[str, Any]:
        """The Model's ``spec`` exactly as KubeAI expects it (camelCase)."""
        spec: dict[str, Any] = {
            "url": self.url,
            "engine": ENGINE,
            "features": [FEATURE],
            "resourceProfile": self.resource_profile,
        }
        if self.image:
            spec["image"] = self.image
        if self.args:
            spec["args"] = list(self.args)
        env = self.merged_env
        if env:
            spec["env"] = env
        if self.secrets:
            spec["envFrom"] = [{"secretRef": {"name": name}} for name in self.secrets]
        if self.files:
            spec["files"] = [{"path": f.path, "content": f.content} for f in self.files]
        if self.cache_profile:
            spec["cacheProfile"] = self.cache_profile
        if self.priority_class_name:
            spec["priorityClassName"] = self.priority_class_name
        replicas = self.desired_replicas
        if replicas is not None:
            spec["replicas"] = replicas
        scaling = self.scaling or Scaling()
        # KubeAI's Go type always serialises minReplicas, and its CEL rule reads it whenever
        # maxReplicas is set: send it always so the rule can never fail on a missing field.
        spec["minReplicas"] = scaling.min_replicas or 0
        if scaling.max_replicas is not None:
            spec["maxReplicas"] = scaling.max_replicas
        if scaling.autoscaling_disabled is not None:
            spec["autoscalingDisabled"] = scaling.autoscaling_disabled
        if scaling.target_requests is not None:
            spec["targetRequests"] = scaling.target_requests
        if scaling.scale_down_delay_seconds is not None:
            spec["scaleDownDelaySeconds"] = scaling.scale_down_delay_seconds
        if scaling.load_balancing is not None:
            spec["loadBalancing"] = scaling.load_balancing.to_kubeai()
        return spec

    def to_manifest(
        self,
        namespace: str,
        *,
        extra_labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Render the KubeAI ``Model`` manifest.

        :param namespace: the namespace KubeAI watches (usually ``kubeai``).
        :param extra_labels: labels added by the caller (e.g. Airflow dag/task ids); checked too.
        :param annotations: annotations added by the caller.
        :return: ``{"apiVersion": "kubeai.org/v1", "kind": "Model", "metadata": ..., "spec": ...}``.
        """
        if not namespace or len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
            raise SpeechModelSpecError(
                [("namespace", f"{namespace!r} is not a valid namespace name. Fix: e.g. 'kubeai'.")]
            )
        labels = dict(self.labels or {})
        if extra_labels:
            try:
                _check_labels(dict(extra_labels))
            except PydanticCustomError as err:
                raise SpeechModelSpecError([("labels", str(err))]) from err
            labels.update(extra_labels)
        metadata: dict[str, Any] = {"name": self.model_name, "namespace": namespace}
        if labels:
            metadata["labels"] = labels
        all_annotations = dict(annotations or {})
        if self.description:
            all_annotations[DESCRIPTION_ANNOTATION] = self.description
        if all_annotations:
            metadata["annotations"] = all_annotations
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": self.kubeai_spec()}


def _refusal(params: Mapping[str, Any]) -> tuple[str, str] | None:
    for key, reason in REFUSED_PARAMETERS.items():
        if params.get(key) not in (None, "", [], {}):
            shown = repr(params[key])
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            return key, f"{key}={shown} is not supported: {reason}"
    return None


def refuse_unsupported(params: Mapping[str, Any]) -> None:
    """Refuse a DigitalHub kubeai-speech parameter that KubeAI cannot express on a Model (the
    check :class:`SpeechModelSpec` makes, for callers that take those parameters on their own).

    :raises SpeechModelSpecError: naming the parameter, the reason and where to set it instead.
    """
    refusal = _refusal(params)
    if refusal is not None:
        raise SpeechModelSpecError([refusal])


def whole_number(value: Any, *, minimum: int = 0, optional: bool = False) -> int | None:
    """``value`` as a whole number >= ``minimum``: an int, or a string of one (a rendered template).

    :param optional: None (or a template rendered to ``""``/``"None"``) is allowed and returned.
    :raises ValueError: with the reason (``is not a whole number``, ``must be at least N``), for the
        caller to put in its own message.
    """
    if optional and (value is None or value in ("", "None")):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueError("is not a whole number")
    number = int(str(value).strip())
    if number < minimum:
        raise ValueError(f"must be at least {minimum}")
    return number


def require_model_name(value: Any, field: str = "model_name", *, adapter: bool = False) -> str:
    """``value`` when it is a KubeAI Model name; otherwise a :class:`SpeechModelSpecError` naming the
    field, the value and the fix (for operators that act on an existing Model).

    :param value: the (rendered) name.
    :param field: the argument it came from.
    :param adapter: also accept ``<model>_<adapter>``, the name KubeAI's endpoint takes for a
        Model's adapter (requests; a Model itself never has an ``_``).
    """
    if adapter and isinstance(value, str) and "_" in value:
        model, _, adapter_name = value.partition("_")
        if not _ADAPTER_NAME.fullmatch(adapter_name):
            raise SpeechModelSpecError(
                [
                    (
                        field,
                        f"{value!r}: {adapter_name!r} is not an adapter name (a-z, 0-9, '-'). Fix: <model>_<adapter>.",
                    )
                ]
            )
        require_model_name(model, field)
        return value
    if not isinstance(value, str):
        raise SpeechModelSpecError(
            [(field, f"{value!r} is not a Model name. Fix: the Model's name, a string.")]
        )
    try:
        return check_model_name(value)
    except PydanticCustomError as err:
        raise SpeechModelSpecError([(field, str(err))]) from err


def build_speech_model_spec(params: Mapping[str, Any]) -> SpeechModelSpec:
    """Validate DigitalHub kubeai-speech parameters into a :class:`SpeechModelSpec`.

    :param params: DigitalHub's parameter names and values.
    :raises SpeechModelSpecError: listing every problem as ``field: message`` with the bad value
        and the fix.
    """
    try:
        return SpeechModelSpec.model_validate(dict(params))
    except ValidationError as err:
        raise SpeechModelSpecError(_problems(err)) from err


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in err.errors(include_url=False):
        loc = [str(part) for part in item["loc"] if not str(part).startswith("function-")]
        field = ".".join(loc)
        message = item["msg"]
        if item["type"] != "kubeai_speech":
            message = f"{message} (got {item.get('input')!r}). Fix: give a value of the documented type."
        problems.append((field, message))
    return problems


def check_update(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> None:
    """Check KubeAI's immutability (transition) rules between an existing and a new Model spec.

    :param old_spec: ``spec`` of the Model in the cluster (camelCase).
    :param new_spec: ``spec`` about to be applied (camelCase).
    :raises SpeechModelSpecError: when the update would be refused by the API server.
    """
    problems: list[tuple[str, str]] = []
    fix = "Fix: delete the Model first (DeleteSpeechModelOperator) or serve under a new model_name."
    old_cache, new_cache = old_spec.get("cacheProfile"), new_spec.get("cacheProfile")
    # Like the API server: a transition rule on a field runs only when old and new both have it.
    if old_cache is not None and new_cache is not None and old_cache != new_cache:
        problems.append(
            (
                "cache_profile",
                f"cannot change from {old_cache!r} to {new_cache!r}: KubeAI's cacheProfile is immutable. {fix}",
            )
        )
    if "cacheProfile" in old_spec and old_spec.get("url") != new_spec.get("url"):
        problems.append(
            (
                "url",
                f"cannot change from {old_spec.get('url')!r} to {new_spec.get('url')!r} while the Model uses cacheProfile {old_cache!r}: KubeAI's url is immutable then. {fix}",
            )
        )
    old_rep = old_spec.get("loadBalancing", {}).get("prefixHash", {}).get("replication")
    new_rep = new_spec.get("loadBalancing", {}).get("prefixHash", {}).get("replication")
    if old_rep is not None and new_rep is not None and old_rep != new_rep:
        problems.append(
            (
                "scaling.load_balancing.prefix_hash.replication",
                f"cannot change from {old_rep} to {new_rep}: KubeAI's replication is immutable. {fix}",
            )
        )
    if problems:
        raise SpeechModelSpecError(problems)
