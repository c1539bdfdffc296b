"""Session fixtures shared by the test modules (the PostgreSQL server: see pg_support)."""

from pg_support import pg_server, postgres_dsn

__all__ = ["pg_server", "postgres_dsn"]
