"""Checked by mypy (``files`` in pyproject), never run: option typos fail type checking.

Each misspelt keyword below must be a mypy error; ``warn_unused_ignores`` (strict mode)
turns an ignore that is no longer needed into an error, so if ``staging``/``production``
ever accepted any keyword again, CI would fail here.
"""

from __future__ import annotations

from kiiex_async import KiiexClient


def misspelt_options() -> None:
    """Typos of real options."""
    KiiexClient.staging(timout=3.0)  # type: ignore[call-arg]
    KiiexClient.production(rate_limt=None)  # type: ignore[call-arg]
    KiiexClient.staging(max_body_size="8 MiB")  # type: ignore[arg-type]


def correct_options() -> None:
    """The same options spelt right type-check."""
    KiiexClient.staging(timeout=3.0, max_body_size=1024)
    KiiexClient.production(rate_limit=None, trust_env=True)
