"""Start-up: wait for the database to answer, under the product-wide `RetryPolicy`.

A server that is starting refuses connections for a moment, so a refusal (and any fault the
shared `is_transient` deems transient) is tried again with the policy's capped exponential
backoff and jitter, until its attempts or its budget (the ``connect_deadline`` setting) run
out. What retrying cannot fix (unknown host or database, wrong password, SSL) fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from app_data.errors import DatabaseConnectionFailedError, DatabaseUnavailableError
from app_data.translate import connect_failure, describe, is_transient_connect_error
from app_data.url import ConnectionTarget
from checkpoint_pg._runtime.retry import RetryPolicy

__all__ = ["wait_until_reachable"]

logger = logging.getLogger("app_data.session")
_FAILURES = (SQLAlchemyError, psycopg.Error, OSError)


async def wait_until_reachable(
    ping: Callable[[], Awaitable[int]], target: ConnectionTarget, policy: RetryPolicy
) -> int:
    """Run `ping` until it answers, retrying transient failures as `policy` allows.

    Returns:
        What `ping` returned (the server version).

    Raises:
        DatabaseConnectionFailedError: no connection could be opened (message masked).
        DatabaseUnavailableError: the database did not answer (message masked).
    """
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        try:
            version = await ping()
            break
        except _FAILURES as exc:
            delay = policy.next_delay(attempts, time.monotonic() - started)
            if delay is None or not is_transient_connect_error(exc):
                raise _gave_up(exc, target, attempts, time.monotonic() - started) from (
                    None if connect_failure(exc) is not None else exc
                )
            logger.warning(
                "database %s not reachable (attempt %d of %d): %s; retrying in %.2fs",
                target.masked,
                attempts,
                policy.attempts,
                describe(exc),
                delay,
            )
            await asyncio.sleep(delay)
    logger.info(
        "connected to %s (PostgreSQL %s) after %d attempt(s) in %.2fs",
        target.masked,
        version,
        attempts,
        time.monotonic() - started,
    )
    return version


def _gave_up(
    exc: BaseException, target: ConnectionTarget, attempts: int, elapsed: float
) -> DatabaseUnavailableError:
    """The error start-up raises after its last attempt failed with `exc` (logged, masked)."""
    failed = connect_failure(exc)
    why = failed.reason if failed is not None else describe(exc)
    where = failed.endpoint if failed is not None else target.masked
    message = f"could not connect to {where} after {attempts} attempt(s) in {elapsed:.1f}s: {why}"
    logger.error("%s", message)
    if failed is not None:
        return DatabaseConnectionFailedError(failed.endpoint, why, message)
    return DatabaseUnavailableError(message)
