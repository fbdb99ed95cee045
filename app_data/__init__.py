"""Application data layer: users, projects, files and thoughts, on async SQLAlchemy + psycopg.

    async with Database() as db:                 # settings from $APP_DATA_DATABASE_URL, ...
        await app_data.migrations.upgrade(db)
        service = AppDataService(db)
        project = await service.create_project(user.id, "demo", ProjectType.GAME)
        await service.save_file(project.id, "src/main.py", "print('hi')")

See ``app_data/session.py`` (units of work, and where the settings, URL, engine, start-up,
error-translation and health modules are), ``models.py`` (schema decisions), ``service.py``
(error contract), and ``docs/audit.md`` in the repository (tables of the platform schema not
mapped here, and why).

It comes with the ``app`` extra (``pip install 'checkpoint-pg[app]'``); without it, importing
this package raises `checkpoint_pg._runtime.errors.MissingExtraError`, which says so.
"""

from app_data import (
    _requires,  # noqa: F401  (first: says which extra is missing)
    migrations,
)
from app_data.errors import (
    AmbiguousEditError,
    AppDataError,
    ConfigurationError,
    ConflictError,
    ContentTooLargeError,
    DatabaseClosedError,
    DatabaseConnectionFailedError,
    DatabaseError,
    DatabaseUnavailableError,
    EditError,
    InvalidCursorError,
    InvalidDatabaseURLError,
    InvalidInputError,
    InvalidPathError,
    MigrationError,
    MissingScopeError,
    ProjectAccessError,
    ReadOnlyModelError,
    TextNotFoundError,
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
    "AmbiguousEditError",
    "AppDataError",
    "AppDataService",
    "AppDataSettings",
    "ConfigurationError",
    "ConflictError",
    "ContentTooLargeError",
    "Database",
    "DatabaseClosedError",
    "DatabaseConnectionFailedError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "EditError",
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
    "MissingScopeError",
    "Page",
    "Plan",
    "PoolStatus",
    "ProjectAccessError",
    "ProjectRecord",
    "ProjectStatus",
    "ProjectType",
    "ReadOnlyModelError",
    "SandboxState",
    "TextNotFoundError",
    "ThoughtRecord",
    "ThreadSummary",
    "UnknownProjectError",
    "UnknownReferenceError",
    "UnknownUserError",
    "UserRecord",
    "UserStatus",
    "get_settings",
    "migrations",
]
