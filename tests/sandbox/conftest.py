"""Fixtures of the sandbox tests: the real sandbox platform over HTTP."""

from tests.support.sandbox import (  # noqa: F401  (pytest fixtures)
    _sandbox_pg_session,
    sandbox,
    sandbox_db_url,
)
