"""Fixtures of the sandbox tests: the real sandbox platform over HTTP."""

from tests.support.sandbox import sandbox, sandbox_db_url  # noqa: F401  (pytest fixtures)
