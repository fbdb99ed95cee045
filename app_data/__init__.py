"""Application data layer: users, projects, files and thoughts, on async SQLAlchemy + psycopg.

    async with Database() as db:                 # settings from $APP_DATA_DATABASE_URL, ...
        await app_data.migrations.upgrade(db)
        service = AppDataService(db)
        project = await service.create_project(user.id, "demo", ProjectType.GAME)
        await service.save_file(project.id, "src/main.py", "print('hi')")

See ``app_data/session.py`` (connections), ``models.py`` (schema decisions), ``service.py``
(error contract) and ``UNMAPPED.md`` (tables of the platform schema not mapped here).
"""

from app_data.errors import (
    AppDataError,
    ConfigurationError,
    ConflictError,
    ContentTooLargeError,
    DatabaseClosedError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidCursorError,
    InvalidDatabaseURLError,
    InvalidInputError,
    InvalidPathError,
    MigrationError,
    ReadOnlyModelError,
    UnknownProjectError,
    UnknownReferenceError,
    UnknownUserError,
)
from app_data.models import Plan, ProjectStatus, ProjectType, SandboxState, UserStatus
from app_data.schemas import (
    FileInfo,
    FileRecord,
    FileWrite,
    Limits,
    Page,
    ProjectRecord,
    ThoughtRecord,
    ThreadSummary,
    UserRecord,
)
from app_data.service import AppDataService
from app_data.session import AppDataSettings, Database, HealthReport, PoolStatus, get_settings

__all__ = [
    "AppDataError",
    "AppDataService",
    "AppDataSettings",
    "ConfigurationError",
    "ConflictError",
    "ContentTooLargeError",
    "Database",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "FileInfo",
    "FileRecord",
    "FileWrite",
    "HealthReport",
    "InvalidCursorError",
    "InvalidDatabaseURLError",
    "InvalidInputError",
    "InvalidPathError",
    "Limits",
    "MigrationError",
    "Page",
    "Plan",
    "PoolStatus",
    "ProjectRecord",
    "ProjectStatus",
    "ProjectType",
    "ReadOnlyModelError",
    "SandboxState",
    "ThoughtRecord",
    "ThreadSummary",
    "UnknownProjectError",
    "UnknownReferenceError",
    "UnknownUserError",
    "UserRecord",
    "UserStatus",
    "get_settings",
]
