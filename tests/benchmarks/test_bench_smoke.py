"""The benchmark suite, run at smoke size through its real code path: structure only.

No timing is asserted anywhere: these tests prove the benchmarks run and report, not how
fast anything is.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from benchmarks.cli import main as bench_main
from benchmarks.participants import IMPLEMENTATIONS
from benchmarks.proxy import ProxyProcess, upstream_of
from benchmarks.report import markdown, to_json, write_json
from benchmarks.runner import SuiteResult, interleaved
from benchmarks.stats import percentile
from benchmarks.targets import TARGETS, evaluate
from benchmarks.workloads import WORKLOADS, resolve
from tests.harness import TestServer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_workload_yields_rows_for_both_implementations(smoke_result: SuiteResult) -> None:
    workloads = {row.workload for row in smoke_result.rows}
    assert workloads == set(WORKLOADS) - {"memory"}
    for row in smoke_result.rows:
        if row.key == "agents.proxy_rtt":
            continue
        assert row.official is not None, row.key
        assert row.ours is not None, row.key
        assert row.ratio is not None, row.key
        assert all(row.n[p] > 0 for p in IMPLEMENTATIONS), row.key


def test_single_stream_rows_carry_the_floor(smoke_result: SuiteResult) -> None:
    rows = {row.key: row for row in smoke_result.rows}
    for key in ("put.1kb.p50", "put.64kb.p50", "put_writes.1kb.p50", "by_id.long.p50"):
        assert rows[key].floor is not None, key
        assert rows[key].ours_over_floor is not None, key


def test_store_rows_cover_every_operation_on_both_routes(
    smoke_result: SuiteResult, has_pgvector: bool
) -> None:
    keys = {row.key for row in smoke_result.rows if row.workload == "store"}
    for kind in ("put", "put_plain", "get", "search_eq", "search_ns", "search_range", "batch"):
        assert {f"store.{kind}.p50", f"store.{kind}.p99"} <= keys, kind
    for kind in ("put", "get", "batch"):
        assert f"store.{kind}.proxy.p50" in keys, kind
    vector_keys = {
        "store.vector.p50",
        "store.vector.proxy.p50",
        "store.put_embedded.p50",
        "store.batch_embedded.p50",
        "store.vector.recall",
    }
    # Vector rows exist exactly when the server has pgvector (PostgreSQL 15 here has not).
    assert (vector_keys <= keys) is has_pgvector
    assert not (vector_keys & keys) or has_pgvector


def test_store_range_filter_row_says_whether_the_results_agree(smoke_result: SuiteResult) -> None:
    rows = {row.key: row for row in smoke_result.rows}
    matches = rows["store.search_range.matches"]
    assert matches.unit == "items"
    assert matches.official is not None
    assert matches.ours is not None
    differ = matches.metric.endswith("results differ")
    assert differ or matches.metric.endswith("same results")
    flagged = "official's results differ" in rows["store.search_range.p50"].metric
    assert flagged is differ


def test_store_targets_are_evaluated(smoke_result: SuiteResult, has_pgvector: bool) -> None:
    verdicts = {v.target.name: v for v in evaluate(smoke_result.rows)}
    store = {name: v for name, v in verdicts.items() if name.startswith("store:")}
    assert len(store) == 7
    for name, verdict in store.items():
        measured = has_pgvector or "vector" not in name
        assert (verdict.value is not None) is measured, name


def test_json_has_rows_targets_environment_and_distributions(
    smoke_result: SuiteResult, tmp_path: Path
) -> None:
    path = tmp_path / "out.json"
    write_json(smoke_result, path)
    data = json.loads(path.read_text())
    assert set(data) >= {"rows", "targets", "environment", "latency_seconds", "profile"}
    row = data["rows"][0]
    assert set(row) >= {"workload", "metric", "official", "ours", "ratio", "n"}
    assert data["environment"]["machine"]["cores"] >= 1
    assert data["environment"]["server"]["version"]
    assert len(data["targets"]) == len(TARGETS)
    assert data == json.loads(json.dumps(to_json(smoke_result), default=str))


def test_markdown_report_has_the_table_and_the_targets(smoke_result: SuiteResult) -> None:
    text = markdown(smoke_result, plots=[("results-writes", "results-writes.png")])
    assert "| workload | metric | unit | official | ours | ratio |" in text
    assert "| put | put, 1 KB channel value, p50 | ms |" in text
    assert "## Targets" in text
    assert "![results-writes](results-writes.png)" in text


def test_targets_at_unmeasured_levels_say_so(smoke_result: SuiteResult) -> None:
    verdicts = {v.target.name: v for v in evaluate(smoke_result.rows)}
    # The smoke profile runs concurrency 1 and 2 only: the 32-task targets are not measured.
    assert verdicts["saver concurrency, 32 async tasks, pool of 10: throughput"].met is None
    assert verdicts["put 1 KB p50"].value is not None


def test_plots_are_pngs(smoke_result: SuiteResult, tmp_path: Path) -> None:
    from benchmarks.plots import write_plots

    paths = write_plots(to_json(smoke_result), tmp_path / "plot.png")
    assert paths
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_cli_writes_table_json_plot_and_measures_memory(
    pg_server: TestServer, tmp_path: Path
) -> None:
    out, png, md = tmp_path / "bench.json", tmp_path / "bench.png", tmp_path / "bench.md"
    args = ["--dsn", pg_server.admin_dsn, "--profile", "smoke", "--workloads", "put,rss"]
    args += ["--concurrency", "1,2", "--json", str(out), "--plot", str(png)]
    args += ["--markdown", str(md), "--no-progress"]
    result = CliRunner().invoke(bench_main, args)
    assert result.exit_code == 0, result.output
    assert "| put | put, 64 KB channel value, p50 |" in result.output
    assert "| memory | client peak RSS" in result.output
    data = json.loads(out.read_text())
    assert {row["workload"] for row in data["rows"]} == {"put", "memory"}
    assert (tmp_path / "bench-writes.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not png.exists()
    assert "bench-writes.png" in md.read_text()


def test_cli_rejects_unknown_workloads_and_bad_levels() -> None:
    runner = CliRunner()
    bad = runner.invoke(bench_main, ["--workloads", "nope"])
    assert bad.exit_code == 2
    assert "unknown workload 'nope'" in bad.output
    assert runner.invoke(bench_main, ["--concurrency", "0,8"]).exit_code == 2


def test_checkpoint_pg_cli_has_the_bench_command() -> None:
    from checkpoint_pg.cli import main

    result = CliRunner().invoke(main, ["bench", "--help"])
    assert result.exit_code == 0
    for option in ("--dsn", "--quick", "--workloads", "--concurrency", "--json", "--plot"):
        assert option in result.output


def test_proxy_forwards_to_the_server(database_dsn: str) -> None:
    with (
        ProxyProcess(upstream_of(database_dsn), delay=0.0005) as proxy,
        psycopg.connect(proxy.dsn_for(database_dsn)) as conn,
    ):
        row = conn.execute("SELECT current_database(), 41 + 1").fetchone()
    assert row is not None
    assert row[1] == 42
    assert row[0] == psycopg.conninfo.conninfo_to_dict(database_dsn)["dbname"]


def test_upstream_of_unix_socket_and_tcp_dsns() -> None:
    unix = upstream_of("host=/tmp/pgdata dbname=postgres user=postgres")
    assert unix.unix_path == "/tmp/pgdata/.s.PGSQL.5432"
    tcp = upstream_of("postgresql://postgres@127.0.0.1:5433/test")
    assert (tcp.host, tcp.port, tcp.unix_path) == ("127.0.0.1", 5433, None)


def test_rounds_rotate_which_participant_goes_first() -> None:
    participants = ("official", "checkpoint_pg", "floor")
    firsts = [interleaved(participants, turn)[0] for turn in range(3)]
    assert sorted(firsts) == sorted(participants)
    assert sorted(interleaved(participants, 5)) == sorted(participants)


def test_workload_names_accept_aliases_once() -> None:
    assert resolve(["get_tuple", "list", "put"]) == ["reads", "put"]
    with pytest.raises(ValueError, match="unknown workload"):
        resolve(["bogus"])


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([7.0], 99) == 7.0
