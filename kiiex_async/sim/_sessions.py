"""Session tokens of the simulated exchange (pure: the caller passes ``now``).

A session lasts ``ttl`` seconds after its last use (AlphaPoint: one hour after the
last-detected activity).  A *pending* session is the half-open state of a 2FA login: it
only authorises ``Authenticate2FA``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

__all__ = ["Session", "SessionStore"]


@dataclass(slots=True)
class Session:
    """One token.  ``repr`` never shows the token itself."""

    token: str
    user_id: int
    last_seen: float
    pending_2fa: bool = False

    def __repr__(self) -> str:
        return f"Session(user_id={self.user_id}, pending_2fa={self.pending_2fa})"


class SessionStore:
    """Tokens by value; expiry is computed lazily on lookup."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user_id: int, now: float, *, pending_2fa: bool = False) -> str:
        """A new GUID token for ``user_id``."""
        token = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        self._sessions[token] = Session(token, user_id, now, pending_2fa)
        return token

    def get(self, token: str, now: float, *, pending_2fa: bool = False) -> Session | None:
        """The live session of ``token`` (touching it), or ``None``.

        ``pending_2fa`` selects which kind is wanted: a pending token never passes for a
        full session and vice versa.
        """
        session = self._sessions.get(token.strip())
        if session is None:
            return None
        if now - session.last_seen > self.ttl:
            del self._sessions[session.token]
            return None
        if session.pending_2fa != pending_2fa:
            return None
        session.last_seen = max(session.last_seen, now)
        return session

    def drop(self, token: str) -> None:
        """Forget a token (log out, or a consumed 2FA token)."""
        self._sessions.pop(token.strip(), None)

    def expire_all(self) -> int:
        """Expire every session; returns how many there were."""
        count = len(self._sessions)
        self._sessions.clear()
        return count
