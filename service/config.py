"""Settings for the service: the only module that reads the environment."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from mappings.canonical import DEFAULT_CANONICAL_BASE, check_base

DEFAULT_DATABASE_URL = "sqlite:///var/diarybridge.sqlite3"
CANONICAL_BASE_VAR = "DIARYBRIDGE_CANONICAL_BASE"
PAGE_TOKEN_KEY_VAR = "DIARYBRIDGE_PAGE_TOKEN_KEY"
# prometheus_client's own variable: it picks its multiprocess value store when this is set.
METRICS_DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _secret(env: Mapping[str, str], name: str, min_length: int) -> str:
    raw = env.get(name, "")
    if raw and len(raw) < min_length:  # the value itself is never quoted
        raise ConfigError(f"{name} must be at least {min_length} characters")
    return raw


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def default_workers() -> int:
    """gunicorn processes when DIARYBRIDGE_WORKERS is unset: one per core, at most 4.

    Each process holds a database pool and a delivery thread, so more buys little here.
    """
    return max(1, min(os.cpu_count() or 1, 4))


def _url(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name) or ""
    if raw and not raw.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL")
    return raw


def _canonical_base(env: Mapping[str, str]) -> str:
    raw = env.get(CANONICAL_BASE_VAR) or DEFAULT_CANONICAL_BASE
    try:
        return check_base(raw)
    except ValueError as exc:
        raise ConfigError(f"{CANONICAL_BASE_VAR}: {exc}") from None


def canonical_base_from_env(env: Mapping[str, str] | None = None) -> str:
    """DIARYBRIDGE_CANONICAL_BASE alone (for commands that need no other setting)."""
    return _canonical_base(dict(os.environ if env is None else env))


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class FhirServerSettings:
    """Where and how we talk to the clinic's FHIR server (empty base_url: push/pull disabled)."""

    base_url: str = ""
    auth: str = "none"  # none | bearer | basic | smart-backend
    bearer_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    smart_client_id: str = ""
    smart_private_key_file: str = ""
    smart_key_id: str = ""
    smart_algorithm: str = "RS384"
    smart_token_url: str = ""
    smart_scope: str = (
        "system/Observation.write system/MedicationAdministration.write system/AdverseEvent.write"
    )
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    ca_bundle: str = ""  # empty: the system's trusted CAs; verification is never switched off
    chunk_size: int = 200
    max_tries: int = 5
    deadline_seconds: float = 120.0
    breaker_failures: int = 3  # failed calls in a row that open the circuit (0: no breaker)
    breaker_cooldown_seconds: float = 30.0  # how long an open circuit refuses calls
    push_strategy: str = "auto"  # auto | update-as-create | conditional-create | conditional-update
    pull_page_size: int = 0  # _count of a pull's searches; 0: the largest the server allows

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FhirServerSettings:
        """Read the DIARYBRIDGE_FHIR_* variables, starting from an optional JSON config file."""
        base: dict[str, Any] = {}
        config_file = env.get("DIARYBRIDGE_FHIR_CONFIG_FILE")
        if config_file:
            try:
                base = json.loads(Path(config_file).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"DIARYBRIDGE_FHIR_CONFIG_FILE: cannot read {config_file}: {exc}"
                ) from None
            unknown = set(base) - set(cls.__dataclass_fields__)
            if unknown:
                raise ConfigError(f"DIARYBRIDGE_FHIR_CONFIG_FILE: unknown keys {sorted(unknown)}")
        settings = cls(**base)
        strings = {
            "base_url": "DIARYBRIDGE_FHIR_BASE_URL",
            "auth": "DIARYBRIDGE_FHIR_AUTH",
            "bearer_token": "DIARYBRIDGE_FHIR_BEARER_TOKEN",
            "username": "DIARYBRIDGE_FHIR_USERNAME",
            "password": "DIARYBRIDGE_FHIR_PASSWORD",
            "smart_client_id": "DIARYBRIDGE_FHIR_SMART_CLIENT_ID",
            "smart_private_key_file": "DIARYBRIDGE_FHIR_SMART_PRIVATE_KEY_FILE",
            "smart_key_id": "DIARYBRIDGE_FHIR_SMART_KEY_ID",
            "smart_algorithm": "DIARYBRIDGE_FHIR_SMART_ALGORITHM",
            "smart_token_url": "DIARYBRIDGE_FHIR_SMART_TOKEN_URL",
            "smart_scope": "DIARYBRIDGE_FHIR_SMART_SCOPE",
            "ca_bundle": "DIARYBRIDGE_FHIR_CA_BUNDLE",
            "push_strategy": "DIARYBRIDGE_FHIR_PUSH_STRATEGY",
        }
        changes: dict[str, Any] = {k: env[v] for k, v in strings.items() if env.get(v)}
        changes["connect_timeout"] = _float(
            env, "DIARYBRIDGE_FHIR_CONNECT_TIMEOUT", settings.connect_timeout
        )
        changes["read_timeout"] = _float(
            env, "DIARYBRIDGE_FHIR_READ_TIMEOUT", settings.read_timeout
        )
        changes["chunk_size"] = _int(env, "DIARYBRIDGE_FHIR_CHUNK_SIZE", settings.chunk_size)
        changes["pull_page_size"] = _int(env, "DIARYBRIDGE_PULL_PAGE_SIZE", settings.pull_page_size)
        changes["max_tries"] = _int(env, "DIARYBRIDGE_FHIR_MAX_TRIES", settings.max_tries)
        changes["deadline_seconds"] = _float(
            env, "DIARYBRIDGE_FHIR_DEADLINE_SECONDS", settings.deadline_seconds
        )
        changes["breaker_failures"] = _int(
            env, "DIARYBRIDGE_FHIR_BREAKER_FAILURES", settings.breaker_failures
        )
        changes["breaker_cooldown_seconds"] = _float(
            env, "DIARYBRIDGE_FHIR_BREAKER_COOLDOWN_SECONDS", settings.breaker_cooldown_seconds
        )
        settings = replace(settings, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        """Reject combinations that cannot work, naming the variable."""
        if self.auth not in {"none", "bearer", "basic", "smart-backend"}:
            raise ConfigError(
                "DIARYBRIDGE_FHIR_AUTH must be one of none, bearer, basic, smart-backend"
            )
        if not 1 <= self.chunk_size <= 1000:
            raise ConfigError("DIARYBRIDGE_FHIR_CHUNK_SIZE must be between 1 and 1000")
        if not 0 <= self.pull_page_size <= 10_000:
            raise ConfigError("DIARYBRIDGE_PULL_PAGE_SIZE must be between 0 (auto) and 10000")
        if self.push_strategy not in {
            "auto",
            "update-as-create",
            "conditional-create",
            "conditional-update",
        }:
            raise ConfigError(
                "DIARYBRIDGE_FHIR_PUSH_STRATEGY must be auto, update-as-create, "
                "conditional-create or conditional-update"
            )
        if self.breaker_failures < 0 or self.breaker_cooldown_seconds <= 0:
            raise ConfigError(
                "DIARYBRIDGE_FHIR_BREAKER_FAILURES must be >= 0 and "
                "DIARYBRIDGE_FHIR_BREAKER_COOLDOWN_SECONDS > 0"
            )
        if self.base_url and not self.base_url.startswith(("https://", "http://")):
            raise ConfigError("DIARYBRIDGE_FHIR_BASE_URL must be an http(s) URL")


@dataclass(frozen=True)
class Settings:
    """Everything the app factory and the CLI need, built once from the environment."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 5 * 1024 * 1024
    max_records_per_request: int = 1000
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    metrics_public: bool = False  # True: GET /metrics without credentials
    sync_async: bool = False  # True: POST /sync/* answers 202 and the worker delivers
    # How long POST /sync/* may push before it answers; records not delivered by then are
    # answered `queued` and the worker delivers them (a hung FHIR server cannot stall the API).
    sync_push_budget_seconds: float = 5.0
    worker_in_process: bool = True  # `serve` runs a delivery worker thread
    # How long a claim holds without renewal; a running batch renews it (heartbeat), so this
    # bounds how long a crashed process's claims wait before another worker may take them.
    lease_seconds: float = 30.0
    # Records a worker claims at once; their outcomes are recorded after they are all pushed,
    # so this bounds what a crash re-sends and how long a batch holds its lease.
    worker_batch: int = 50
    exports_dir: str = ""  # empty: exports/ beside a SQLite database file, else ./var/exports
    readiness_timeout: float = 3.0  # seconds /readyz waits for the FHIR server's /metadata
    # Signs `_page` tokens; every process of an instance (and every instance behind one
    # balancer) needs the same one, or a next link fails on whichever process did not sign it.
    page_token_key: str = field(default="", repr=False)
    web_workers: int = field(default_factory=default_workers)  # gunicorn processes
    web_threads: int = 4  # threads per gunicorn process
    # Set (by `serve`, the gunicorn config, or the operator): counters are shared by all workers.
    metrics_multiproc_dir: str = ""
    # Bulk Data: the one Group id Group/[id]/$export answers (every patient); empty: refused.
    export_group: str = ""
    # The token endpoint of the authorization server whose JWTs we accept (SMART discovery).
    smart_token_url: str = ""
    # Canonical base of our local CodeSystems (mappings.canonical); the default is today's, so
    # codes already on servers keep their systems. Identifier systems never move.
    canonical_base: str = DEFAULT_CANONICAL_BASE
    # Also send each MG-ADL as a QuestionnaireResponse (SDC), the Observation derivedFrom it.
    mg_adl_questionnaire_response: bool = False
    fhir: FhirServerSettings = field(default_factory=FhirServerSettings)
    # A clinic's overrides of the signal rules ({rule id: {threshold, severity, enabled}}), from
    # the JSON or YAML file DIARYBRIDGE_SIGNAL_RULES_FILE; checked against the rules at start-up.
    signal_rules: Mapping[str, Any] = field(default_factory=dict)
    # A care-team reference (CareTeam/<id>, Practitioner/<id>, ...) that gets a Communication
    # per active signal with the pushed Flags; empty (the default): none is sent.
    signal_care_team: str = ""
    # parsed by service.security from the same environment; kept raw here so only we read os.environ
    security_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    testing: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from DIARYBRIDGE_* variables (and DATABASE_URL)."""
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=env.get("DIARYBRIDGE_HOST") or "127.0.0.1",
            port=_int(env, "DIARYBRIDGE_PORT", 8080),
            max_body_bytes=_int(env, "DIARYBRIDGE_MAX_BODY_BYTES", 5 * 1024 * 1024),
            max_records_per_request=_int(env, "DIARYBRIDGE_MAX_RECORDS_PER_REQUEST", 1000),
            log_level=env.get("DIARYBRIDGE_LOG_LEVEL") or "INFO",
            log_format=_choice(env, "DIARYBRIDGE_LOG_FORMAT", ("json", "text"), "json"),
            metrics_public=_bool(env, "DIARYBRIDGE_METRICS_PUBLIC", False),
            sync_async=_bool(env, "DIARYBRIDGE_SYNC_ASYNC", False),
            sync_push_budget_seconds=_float(env, "DIARYBRIDGE_SYNC_PUSH_BUDGET_SECONDS", 5.0),
            worker_in_process=_bool(env, "DIARYBRIDGE_WORKER_IN_PROCESS", True),
            lease_seconds=_float(env, "DIARYBRIDGE_LEASE_SECONDS", 30.0),
            worker_batch=_int(env, "DIARYBRIDGE_WORKER_BATCH", 50),
            exports_dir=env.get("DIARYBRIDGE_EXPORTS_DIR", ""),
            readiness_timeout=_float(env, "DIARYBRIDGE_READINESS_TIMEOUT", 3.0),
            page_token_key=_secret(env, PAGE_TOKEN_KEY_VAR, min_length=16),
            web_workers=_positive(env, "DIARYBRIDGE_WORKERS", default_workers()),
            web_threads=_positive(env, "DIARYBRIDGE_THREADS", 4),
            metrics_multiproc_dir=env.get(METRICS_DIR_VAR, ""),
            export_group=env.get("DIARYBRIDGE_EXPORT_GROUP", ""),
            smart_token_url=_url(env, "DIARYBRIDGE_SMART_TOKEN_URL"),
            canonical_base=_canonical_base(env),
            mg_adl_questionnaire_response=_bool(
                env, "DIARYBRIDGE_MG_ADL_QUESTIONNAIRE_RESPONSE", False
            ),
            fhir=FhirServerSettings.from_env(env),
            signal_rules=_signal_rules(env.get("DIARYBRIDGE_SIGNAL_RULES_FILE", "")),
            signal_care_team=_care_team(env.get("DIARYBRIDGE_SIGNAL_CARE_TEAM", "")),
            security_env={k: v for k, v in env.items() if k.startswith("DIARYBRIDGE_")},
            testing=_bool(env, "DIARYBRIDGE_TESTING", False),
        )


def _signal_rules(path: str) -> Mapping[str, Any]:
    if not path:
        return {}
    try:
        # YAML is a superset of JSON: either file format reads here.
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"DIARYBRIDGE_SIGNAL_RULES_FILE: cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("DIARYBRIDGE_SIGNAL_RULES_FILE: must map rule ids to settings")
    return raw


CARE_TEAM_REFERENCE = re.compile(
    r"(CareTeam|Practitioner|PractitionerRole|Organization|Group)/[A-Za-z0-9\-.]{1,64}"
)


def _care_team(value: str) -> str:
    value = value.strip()
    if value and not CARE_TEAM_REFERENCE.fullmatch(value):
        raise ConfigError(
            "DIARYBRIDGE_SIGNAL_CARE_TEAM: must be a reference like CareTeam/<id> (or "
            "Practitioner, PractitionerRole, Organization, Group)"
        )
    return value


def worker_environment(settings: Settings, run_dir: str) -> dict[str, str]:
    """What a gunicorn master hands its workers through the environment: a page-token key when
    none is configured, and a metrics directory in `run_dir` when none is."""
    handed_down: dict[str, str] = {}
    if not settings.page_token_key:
        handed_down[PAGE_TOKEN_KEY_VAR] = secrets.token_urlsafe(32)
    if not settings.metrics_multiproc_dir:
        handed_down[METRICS_DIR_VAR] = os.path.join(run_dir, "metrics")
    return handed_down
