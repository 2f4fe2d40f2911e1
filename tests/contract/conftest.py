"""Fixtures of the contract tests: backend_client against the real sandbox over HTTP."""

from tests.support.sandbox import (  # noqa: F401  (pytest fixtures)
    _sandbox_pg_session,
    sandbox,
    sandbox_db_url,
)
