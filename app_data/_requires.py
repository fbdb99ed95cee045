"""Fail at import with the name of the missing extra, before any SQLAlchemy import does."""

from __future__ import annotations

from checkpoint_pg._runtime.extras import require

require("app_data", "app")
