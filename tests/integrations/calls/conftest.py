"""The therapy centre of the sessions' tests: two students, their teams and parents."""

from tests.integrations.sessions.conftest import centre, local_centre

__all__ = ["centre", "local_centre"]
