"""The blocking modules generated from async sources are current (sync never drifts)."""

from __future__ import annotations

import pytest

from tests.tools.async_to_sync import GENERATED, ROOT, render


@pytest.mark.parametrize("item", GENERATED, ids=[g.target for g in GENERATED])
def test_generated_module_matches_its_async_source(item) -> None:  # type: ignore[no-untyped-def]
    current = (ROOT / item.target).read_text(encoding="utf-8")
    assert current == render(item), (
        f"{item.target} is out of date with {item.source}: "
        "run `python -m tests.tools.async_to_sync`"
    )
