"""The transient-fault policy shared by the savers, the stores and `app_data`.

Two questions, answered once for the whole product:

- *Is this error worth another attempt?* (`classify`, `is_transient`) Only faults that a new
  attempt can outlive: a lost connection (the server restarted, the backend was terminated,
  the network cut), a server that is shutting down or starting up, and the two outcomes of a
  concurrent transaction that PostgreSQL rolls back for us (serialization failure, deadlock).
  Never a programming or data error, never a timeout waiting for a pool (the pool has waited
  long enough), never an error this package raised on purpose.
- *How long between attempts, and for how long in all?* (`RetryPolicy`) Capped exponential
  backoff with jitter, a maximum number of attempts and a total time budget.

The loops that apply the policy live with the code that knows what may be run again: the
shells of the savers and stores (`checkpoint_pg._runtime.shell`) and `app_data.service`. Each retry
logs one WARNING line on the ``checkpoint_pg.retry`` logger with the attempt, the delay, the
error class and its SQLSTATE — never a message text, which could name a server or a user.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout, TooManyRequests

from checkpoint_pg._runtime.errors import CheckpointPgError

__all__ = [
    "DEFAULT_POLICY",
    "Fault",
    "RetryPolicy",
    "classify",
    "is_transient",
    "log_retry",
    "logger",
]

logger = logging.getLogger("checkpoint_pg.retry")

# "lost": the connection is gone (whatever was in flight may or may not have committed);
# "rolled_back": the server aborted the transaction and the connection is still usable.
Fault = Literal["lost", "rolled_back"]

# Sent by a server that is going away or not there yet, or that closed an idle session: the
# connection (if any) is dead.
_SHUTDOWN = (
    pg_errors.AdminShutdown,  # 57P01: pg_terminate_backend, fast/smart shutdown
    pg_errors.CrashShutdown,  # 57P02: another backend crashed, the server restarts
    pg_errors.CannotConnectNow,  # 57P03: starting up or shutting down
    pg_errors.IdleSessionTimeout,  # 57P05: idle_session_timeout closed the connection
)
# PostgreSQL rolled the transaction back so that another could proceed: run it again.
_ROLLED_BACK = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
# Raised by psycopg_pool about the pool itself, not about a connection: never retried.
_POOL_ERRORS = (PoolTimeout, TooManyRequests)


def classify(exc: BaseException) -> Fault | None:
    """What kind of transient fault `exc` is, or None if another attempt cannot help.

    A SQLAlchemy `DBAPIError` is judged by the driver error it wraps (its ``orig``).
    """
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, psycopg.Error) and isinstance(orig, psycopg.Error):
        exc = orig
    if not isinstance(exc, psycopg.Error):
        return None
    # Our own typed errors subclass psycopg's so that `except psycopg.OperationalError`
    # keeps working; they are verdicts, never retried.
    if isinstance(exc, (CheckpointPgError, *_POOL_ERRORS)):
        return None
    if isinstance(exc, _ROLLED_BACK):
        return "rolled_back"
    if isinstance(exc, _SHUTDOWN):
        return "lost"
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        # No SQLSTATE: libpq's own report (connection refused/closed/timed out, server closed
        # the connection unexpectedly); class 08: connection exception.
        if state is None or state.startswith("08"):
            return "lost"
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt of an idempotent operation could succeed where `exc` failed."""
    return classify(exc) is not None


# The most attempts a policy derives from its budget (a policy whose delays can be 0 would
# otherwise have no bound).
MAX_DERIVED_ATTEMPTS = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a transient fault.

    The delay before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2**(n-1))``,
    shortened by a random fraction of at most `jitter` (0: no jitter, 1: anywhere in
    ``[0, delay]``) so that clients failing together do not come back together. No retry
    starts once `max_attempts` attempts were made or when its delay would end past
    `total_budget` seconds after the first attempt began.

    By default the attempts are derived from the budget: as many as it takes for the shortest
    delays jitter can draw to fill `total_budget`, so it is always the budget that ends the
    retrying (with the defaults: 25 attempts within 20 s, which rides out a server restart of
    about 15 s). Give `max_attempts` to stop sooner.

    Args:
        max_attempts: attempts in all, the first included; 1 disables retrying; None (the
            default): derived from `total_budget` as above.
        base_delay: seconds before the first retry.
        max_delay: the cap on any one delay, in seconds.
        jitter: the fraction of each delay that is randomised, from 0 to 1.
        total_budget: seconds from the first attempt after which no retry starts.
    """

    max_attempts: int | None = None
    base_delay: float = 0.1
    max_delay: float = 2.0
    jitter: float = 0.5
    total_budget: float = 20.0

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0 or self.total_budget < 0:
            raise ValueError("RetryPolicy delays and budget must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")

    @property
    def attempts(self) -> int:
        """The attempts in all: `max_attempts`, or the number derived from the budget."""
        if self.max_attempts is not None:
            return self.max_attempts
        return self._attempts_for_budget()

    def _attempts_for_budget(self) -> int:
        """The attempts after which even the shortest jittered delays have spent the budget."""
        waited, attempts = 0.0, 1
        while waited < self.total_budget and attempts < MAX_DERIVED_ATTEMPTS:
            shortest = min(self.max_delay, self.base_delay * 2.0 ** (attempts - 1))
            waited += shortest * (1.0 - self.jitter)
            attempts += 1
        return attempts

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that never retries: every fault surfaces at once."""
        return cls(max_attempts=1)

    @property
    def enabled(self) -> bool:
        return self.attempts > 1

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        delay = min(self.max_delay, self.base_delay * (2.0 ** (retry - 1)))
        return delay * (1.0 - self.jitter * random.random())  # noqa: S311 - jitter, not a secret

    def next_delay(self, attempts: int, elapsed: float) -> float | None:
        """The wait before the next attempt after `attempts` failed ones, or None to give up.

        Args:
            attempts: attempts made so far (all failed).
            elapsed: seconds since the first attempt began.
        """
        if attempts >= self.attempts:
            return None
        delay = self.delay(attempts)
        if elapsed + delay > self.total_budget:
            return None
        return delay


DEFAULT_POLICY = RetryPolicy()


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of `exc` (or of the driver error a SQLAlchemy error wraps)."""
    if not isinstance(exc, psycopg.Error):
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, psycopg.Error) else exc
    return exc.sqlstate if isinstance(exc, psycopg.Error) else None


def error_name(exc: BaseException) -> str:
    """``ClassName (SQLSTATE xxxxx)`` of the driver error behind `exc`: no message text."""
    if not isinstance(exc, psycopg.Error):
        orig = getattr(exc, "orig", None)
        exc = orig if isinstance(orig, psycopg.Error) else exc
    state = sqlstate_of(exc)
    return f"{type(exc).__name__} (SQLSTATE {state or 'none'})"


def log_retry(
    what: str, exc: BaseException, attempt: int, policy: RetryPolicy, delay: float
) -> None:
    """The one WARNING line logged before each retry (secret-free: no message text, no DSN)."""
    logger.warning(
        "%s failed with %s; retry %d of %d in %.3fs",
        what,
        error_name(exc),
        attempt,
        policy.attempts - 1,
        delay,
    )
