"""Fixtures for the deepagents backend: a project, and the backend scoped to it."""

from __future__ import annotations

import pytest

pytest.importorskip("deepagents", reason="the deepagents extra is not installed")

from app_data import AppDataService
from app_data.schemas import ProjectRecord
from app_data.tools.backend import ProjectBackend
from app_data.tools.scope import ToolScope


@pytest.fixture
def backend(service: AppDataService, project: ProjectRecord) -> ProjectBackend:
    """Our backend on the test's project, with a fixed scope (no graph needed)."""
    return ProjectBackend(service, scope=ToolScope(project.user_id, project.id))
