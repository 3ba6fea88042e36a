"""SecuritySettings and from_mapping: env-like strings in, validated settings out."""

from __future__ import annotations

import json

import pytest

from service.security import (
    ApiKeyGrant,
    Scope,
    SecurityConfigError,
    SecuritySettings,
    hash_api_key,
)

PLAIN_KEY = "dev-key-0123456789abcdef"


def keys_env(*entries: dict[str, object]) -> dict[str, str]:
    return {"DIARYBRIDGE_API_KEYS": json.dumps(list(entries))}


def test_defaults_accept_nothing_and_allow_four_algorithms():
    settings = SecuritySettings.from_mapping({})
    assert not settings.accepts_tokens
    assert settings.api_keys == {}
    assert settings.allowed_algorithms == ("RS256", "RS384", "ES256", "ES384")
    assert settings.leeway_seconds == 30.0
    assert settings.jwks_cache_seconds == 300.0


def test_from_mapping_reads_every_variable(tmp_path):
    jwks = tmp_path / "jwks.json"
    settings = SecuritySettings.from_mapping(
        {
            "DIARYBRIDGE_JWKS_FILE": str(jwks),
            "DIARYBRIDGE_JWT_ISSUER": "https://auth.example.test",
            "DIARYBRIDGE_JWT_AUDIENCE": "https://a.example.test, https://b.example.test",
            "DIARYBRIDGE_JWT_ALGORITHMS": "ES384,RS384",
            "DIARYBRIDGE_JWT_LEEWAY_SECONDS": "5",
            "DIARYBRIDGE_JWKS_CACHE_SECONDS": "60",
            "DIARYBRIDGE_JWKS_TIMEOUT_SECONDS": "2.5",
            **keys_env({"key": PLAIN_KEY, "client_id": "dev", "scopes": "system/*.read"}),
        }
    )
    assert settings.jwks_file == jwks
    assert settings.accepts_tokens
    assert settings.audience == ("https://a.example.test", "https://b.example.test")
    assert settings.allowed_algorithms == ("ES384", "RS384")
    assert (settings.leeway_seconds, settings.jwks_cache_seconds) == (5.0, 60.0)
    assert settings.jwks_timeout_seconds == 2.5
    assert settings.api_keys == {
        hash_api_key(PLAIN_KEY): ApiKeyGrant("dev", frozenset({Scope("system", "*", True, False)}))
    }


def test_plain_keys_are_stored_only_as_hashes():
    settings = SecuritySettings.from_mapping(
        keys_env({"key": PLAIN_KEY, "client_id": "dev", "scopes": "system/*.read"})
    )
    assert PLAIN_KEY not in repr(settings)
    assert list(settings.api_keys) == [hash_api_key(PLAIN_KEY)]


def test_hashed_key_with_patient_and_v2_scope_list():
    digest = hash_api_key(PLAIN_KEY).upper()  # hex case does not matter
    settings = SecuritySettings.from_mapping(
        keys_env(
            {
                "key_sha256": digest,
                "client_id": "kiosk",
                "scopes": ["patient/Observation.cruds"],
                "patient": "https://clinic.example.test/mrn|000123",
            }
        )
    )
    grant = settings.api_keys[hash_api_key(PLAIN_KEY)]
    assert grant.patient == "https://clinic.example.test/mrn|000123"
    assert grant.scopes == {Scope("patient", "Observation", True, True)}


def test_hash_api_key_is_sha256_hex():
    # sha256("abc") from FIPS 180-2, appendix B.1.
    assert hash_api_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"key": "x"}', "must be a JSON list"),
        ("[1]", r"\[0\] must be an object"),
        (json.dumps([{"client_id": "a", "scopes": "system/*.read"}]), "exactly one of"),
        (
            json.dumps([{"key": PLAIN_KEY, "key_sha256": "0" * 64, "client_id": "a"}]),
            "exactly one of",
        ),
        (json.dumps([{"key": "short", "client_id": "a", "scopes": "x"}]), "at least 16"),
        (json.dumps([{"key_sha256": "abc", "client_id": "a", "scopes": "x"}]), "64 hex"),
        (json.dumps([{"key": PLAIN_KEY, "scopes": "system/*.read"}]), "'client_id'"),
        (json.dumps([{"key": PLAIN_KEY, "client_id": "a", "scope": "x"}]), "unknown fields"),
        (json.dumps([{"key": PLAIN_KEY, "client_id": "a", "scopes": 5}]), "'scopes' must be"),
        (json.dumps([{"key": PLAIN_KEY, "client_id": "a", "scopes": ""}]), "'scopes' is empty"),
        (
            json.dumps([{"key": PLAIN_KEY, "client_id": "a", "scopes": "openid system/*.read"}]),
            "not an enforceable clinical scope",
        ),
        (
            json.dumps([{"key": PLAIN_KEY, "client_id": "a", "scopes": "system/*.rs?x=1"}]),
            "not an enforceable clinical scope",
        ),
        (
            json.dumps(
                [{"key": PLAIN_KEY, "client_id": "a", "scopes": "patient/*.rs", "patient": "G/1"}]
            ),
            "'patient'",
        ),
        (
            json.dumps(
                [
                    {"key": PLAIN_KEY, "client_id": "a", "scopes": "system/*.read"},
                    {
                        "key_sha256": hash_api_key(PLAIN_KEY),
                        "client_id": "b",
                        "scopes": "user/*.rs",
                    },
                ]
            ),
            r"\[1\]: the same key is configured twice",
        ),
    ],
)
def test_malformed_api_keys_fail_naming_the_entry_not_the_key(raw, message):
    with pytest.raises(SecurityConfigError, match=message) as caught:
        SecuritySettings.from_mapping({"DIARYBRIDGE_API_KEYS": raw})
    assert "DIARYBRIDGE_API_KEYS" in str(caught.value)
    assert PLAIN_KEY not in str(caught.value)


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS512", "EdDSA"])
def test_symmetric_or_none_algorithms_cannot_be_configured(algorithms):
    with pytest.raises(SecurityConfigError, match="DIARYBRIDGE_JWT_ALGORITHMS"):
        SecuritySettings.from_mapping({"DIARYBRIDGE_JWT_ALGORITHMS": algorithms})


def test_blank_algorithm_list_means_the_default():
    settings = SecuritySettings.from_mapping({"DIARYBRIDGE_JWT_ALGORITHMS": " , "})
    assert settings.allowed_algorithms == ("RS256", "RS384", "ES256", "ES384")


def test_empty_algorithm_list_is_rejected():
    with pytest.raises(SecurityConfigError):
        SecuritySettings(allowed_algorithms=())


@pytest.mark.parametrize(
    "url",
    ["http://auth.example.test/jwks", "file:///etc/passwd", "ftp://auth.example.test/jwks"],
)
def test_jwks_url_must_be_https_except_on_loopback(url):
    with pytest.raises(SecurityConfigError, match="https"):
        SecuritySettings(jwks_url=url, issuer="i", audience=("a",))


@pytest.mark.parametrize("url", ["https://auth.example.test/jwks", "http://127.0.0.1:8080/jwks"])
def test_jwks_url_accepted(url):
    assert SecuritySettings(jwks_url=url, issuer="i", audience=("a",)).accepts_tokens


def test_jwks_needs_issuer_and_audience(tmp_path):
    with pytest.raises(SecurityConfigError, match="DIARYBRIDGE_JWT_ISSUER"):
        SecuritySettings(jwks_file=tmp_path / "j.json", audience=("a",))
    with pytest.raises(SecurityConfigError, match="DIARYBRIDGE_JWT_AUDIENCE"):
        SecuritySettings(jwks_file=tmp_path / "j.json", issuer="i")


def test_url_and_file_are_exclusive(tmp_path):
    with pytest.raises(SecurityConfigError, match="not both"):
        SecuritySettings(
            jwks_url="https://a.example.test/j",
            jwks_file=tmp_path / "j.json",
            issuer="i",
            audience=("a",),
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIARYBRIDGE_JWT_LEEWAY_SECONDS", "soon"),
        ("DIARYBRIDGE_JWT_LEEWAY_SECONDS", "-1"),
        ("DIARYBRIDGE_JWT_LEEWAY_SECONDS", "3600"),
        ("DIARYBRIDGE_JWKS_CACHE_SECONDS", "0"),
    ],
)
def test_bad_numbers_name_the_variable(name, value):
    with pytest.raises(SecurityConfigError, match=name):
        SecuritySettings.from_mapping({name: value})


def test_api_keys_mapping_must_hold_hashes():
    grant = ApiKeyGrant("x", frozenset({Scope("system", "*", True, False)}))
    with pytest.raises(SecurityConfigError, match="sha256"):
        SecuritySettings(api_keys={PLAIN_KEY: grant})
