"""`benchmarks.soak` at smoke size (a few seconds, 4 runs, a few kills): the loop, the killer
and the checks work. The real soak (``python -m benchmarks.soak``) runs for minutes."""

from __future__ import annotations

from benchmarks.soak import soak


async def test_soak_smoke_without_the_retry_policy(database_dsn: str) -> None:
    """Retries off: every kill that hits a run reaches the run loop, which resumes the run."""
    result = await soak(
        database_dsn,
        seconds=5,
        runs=4,
        pool_size=4,
        kill_every=(0.7, 1.2),
        sample_every=1,
        seed=7,
        retry=False,
    )
    assert result.kill_events >= 2
    assert result.backends_killed >= 1
    assert result.runs_finished > 0
    assert result.checkpoints_lost == 0
    assert result.runs_stuck == 0
    assert result.runs_wrong == 0
    assert result.checkpoint_rows >= result.checkpoints_acknowledged > 0
    assert len(result.rss_kib) >= 3
    assert "verdict" in result.report()
    assert result.as_dict()["checkpoints_lost"] == 0
