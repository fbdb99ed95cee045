"""How big and how long each workload runs: the full run, `--quick`, the test suite's smoke."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["FULL", "PROFILES", "QUICK", "SMOKE", "Profile", "is_smoke_run"]


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run. Every count is per participant and per round."""

    name: str
    rounds: int
    warmup_ops: int
    put_ops: int
    put_writes_ops: int
    read_ops: int
    # Thread lengths for get_tuple/list: (short, medium, long). The targets read them as the
    # issue's 10, 500 and 10,000-checkpoint threads.
    thread_sizes: tuple[int, int, int]
    # Other threads of 10 checkpoints in the same tables, so the planner's statistics look
    # like a production database's (many threads), not like a table holding three.
    background_threads: int
    agent_runs: int
    agent_disk_threads: int
    concurrency: tuple[int, ...]
    concurrency_seconds: float
    # Rounds of the concurrency and defaults workloads (each round is long already).
    concurrency_rounds: int
    agent_waves: int
    rss_runs: int
    rss_rounds: int
    defaults_ops: int
    # The store workload: items seeded before timing (in namespaces of 100), calls of each
    # single-op kind and batches of 50 ops per participant and round.
    store_items: int
    store_ops: int
    store_batches: int
    pool_size: int = 10
    # Added to each forwarded chunk, each way, by the benchmark's TCP proxy.
    proxy_delay: float = 0.0005

    def with_concurrency(self, levels: tuple[int, ...] | None) -> Profile:
        """This profile with other concurrency levels (None keeps its own)."""
        return self if not levels else replace(self, concurrency=levels)


FULL = Profile(
    name="full",
    rounds=5,
    warmup_ops=50,
    put_ops=200,
    put_writes_ops=200,
    read_ops=100,
    thread_sizes=(10, 500, 10_000),
    background_threads=1_000,
    agent_runs=4,
    agent_disk_threads=20,
    concurrency=(1, 8, 32),
    concurrency_seconds=2.0,
    concurrency_rounds=3,
    agent_waves=2,
    rss_runs=20,
    rss_rounds=2,
    defaults_ops=100,
    store_items=100_000,
    store_ops=100,
    store_batches=40,
)

QUICK = Profile(
    name="quick",
    rounds=3,
    warmup_ops=10,
    put_ops=40,
    put_writes_ops=40,
    read_ops=30,
    thread_sizes=(10, 500, 2_000),
    background_threads=100,
    agent_runs=1,
    agent_disk_threads=10,
    concurrency=(1, 8, 32),
    concurrency_seconds=0.3,
    concurrency_rounds=1,
    agent_waves=1,
    rss_runs=3,
    rss_rounds=1,
    defaults_ops=20,
    store_items=10_000,
    store_ops=20,
    store_batches=10,
)

# For the test suite: every code path, tiny sizes, a few seconds.
SMOKE = Profile(
    name="smoke",
    rounds=2,
    warmup_ops=2,
    put_ops=4,
    put_writes_ops=4,
    read_ops=3,
    thread_sizes=(3, 5, 8),
    background_threads=2,
    agent_runs=1,
    agent_disk_threads=1,
    concurrency=(1, 2),
    concurrency_seconds=0.05,
    concurrency_rounds=1,
    agent_waves=1,
    rss_runs=1,
    rss_rounds=1,
    defaults_ops=3,
    store_items=300,
    store_ops=3,
    store_batches=2,
    pool_size=2,
)

PROFILES = {p.name: p for p in (FULL, QUICK, SMOKE)}


def is_smoke_run(profile_name: str) -> bool:
    """Only the full profile's sizes make target verdicts worth reading; the rest are smoke."""
    return profile_name != FULL.name
