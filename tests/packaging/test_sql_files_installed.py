"""The savers' `.sql` files ship in the wheel and load from an install."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.packaging.conftest import ROOT
from tests.packaging.test_install import run


def test_the_wheel_carries_every_sql_file_of_the_savers(wheel: Path) -> None:
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "checkpoint_pg").rglob("*.sql")}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("checkpoint_pg/")}
    assert source
    assert source <= shipped


def test_an_install_renders_the_savers_statements(installed: Path) -> None:
    code = (
        f"import checkpoint_pg._sql as s; assert s.__file__.startswith({str(installed)!r}); "
        "s.statements_for('x'); s.retention_statements_for(None); print('ok')"
    )
    done = run(code, path=installed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
