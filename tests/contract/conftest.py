"""Fixtures of the contract tests: backend_client against the real sandbox over HTTP."""

from tests.support.sandbox import sandbox, sandbox_db_url  # noqa: F401  (pytest fixtures)
