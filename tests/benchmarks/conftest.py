"""One smoke-size run of the suite, shared by the structure tests of this directory."""

from __future__ import annotations

import pytest

from benchmarks.profiles import SMOKE
from benchmarks.runner import SuiteResult, run_suite
from benchmarks.workloads import WORKLOADS
from tests.harness import DatabaseFactory, TestServer


@pytest.fixture(scope="session")
def smoke_result(db_factory: DatabaseFactory, pg_server: TestServer) -> SuiteResult:
    """Every workload but the subprocess one (tested through the CLI), at smoke size."""
    names = [name for name in WORKLOADS if name != "memory"]
    return run_suite(SMOKE, db_factory, pg_server.admin_dsn, workloads=names, progress=False)
