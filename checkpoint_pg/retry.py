"""How transient faults are retried: `RetryPolicy` (the savers, the store and app_data share it).

The policy lives in the runtime (`checkpoint_pg._runtime.retry`); this is its public name.
Retries are logged on the ``checkpoint_pg.retry`` logger, one WARNING each.
"""

from checkpoint_pg._runtime.retry import DEFAULT_POLICY, RetryPolicy, is_transient

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "is_transient"]
