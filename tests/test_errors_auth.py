"""The error tree and the credentials object."""

import hashlib
import hmac

import pytest

from kiiex_async import Credentials, errors
from kiiex_async.auth import sign, signed_headers, verify_signature


def test_error_tree_shape() -> None:
    """Callers catch by recovery class: unknown outcome is transport, funds a rejection."""
    assert issubclass(errors.UnknownOutcomeError, errors.TransportError)
    assert issubclass(errors.InsufficientFundsError, errors.RejectedError)
    assert issubclass(errors.RejectedError, errors.ApiError)
    assert issubclass(errors.BelowMinimumError, errors.InvalidInputError)
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.TwoFactorRequiredError, errors.AuthenticationError)


def test_rate_limited_keeps_retry_after_and_context() -> None:
    """RateLimitedError keeps retry_after and the AlphaPoint fields."""
    exc = errors.RateLimitedError("slow down", retry_after=2.5, method="GetLevel1", errorcode=None)
    assert exc.retry_after == 2.5
    assert exc.status == 429
    assert exc.method == "GetLevel1"


def test_signature_matches_independent_hmac() -> None:
    """sign() is lowercase hex HMAC-SHA256(secret, nonce + user_id + api_key)."""
    expected = hmac.new(b"s3cr3t", b"123" + b"96" + b"key", hashlib.sha256).hexdigest()
    assert sign(api_secret="s3cr3t", nonce="123", user_id=96, api_key="key") == expected


def test_signature_known_answer_vector() -> None:
    """A literal vector pins the message order (nonce, user id, key) against symmetric bugs."""
    got = sign(api_secret="secret", nonce="1", user_id="2", api_key="3")
    assert got == "77de38e4b50e618a0ebb95db61e2f42697391659d82c064a5f81b9f48d85ccd5"


def test_verify_signature_accepts_uppercase_and_rejects_tampering() -> None:
    """verify_signature is case-insensitive on hex and rejects another key."""
    headers = signed_headers(api_key="k", api_secret="s", user_id=7, nonce="99")
    assert headers["UserId"] == "7" and headers["Nonce"] == "99"
    sig = headers["Signature"]
    assert verify_signature(
        api_secret="s", nonce="99", user_id="7", api_key="k", signature=sig.upper()
    )
    assert not verify_signature(api_secret="s", nonce="99", user_id="7", api_key="x", signature=sig)


def test_credentials_repr_hides_secrets() -> None:
    """Neither the secret nor the password appear in repr or str."""
    creds = Credentials(
        api_key="pub", api_secret="TOPSECRET", user_id=5, username="u", password="PW1234"
    )
    text = repr(creds) + str(creds)
    assert "TOPSECRET" not in text and "PW1234" not in text
    assert "pub" in text


def test_credentials_from_env_names_missing_variables() -> None:
    """from_env says which variable is missing."""
    with pytest.raises(errors.ConfigurationError, match="KIIEX_API_SECRET"):
        Credentials.from_env({"KIIEX_API_KEY": "k", "KIIEX_USER_ID": "1"})
    with pytest.raises(errors.ConfigurationError, match="no credentials"):
        Credentials.from_env({})
    creds = Credentials.from_env(
        {"KIIEX_API_KEY": "k", "KIIEX_API_SECRET": "s", "KIIEX_USER_ID": "9"}
    )
    assert creds.user_id == "9" and creds.uses_api_key


def test_credentials_reject_half_configured_key() -> None:
    """An API key without its secret is a configuration error, not a later 401."""
    with pytest.raises(errors.ConfigurationError):
        Credentials(api_key="k", user_id=1)
    with pytest.raises(errors.ConfigurationError):
        Credentials(username="u")
