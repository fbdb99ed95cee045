"""Pydantic models at the service boundary: validated inputs, immutable records, pages.

Every service call validates its arguments here before any statement is sent. Rules:

- identifiers (user, project, thread ids): 1-128 characters of ``[A-Za-z0-9_.:-]``, starting
  with a letter or digit (UUIDs, cuids and the like), so a typo or an injection attempt fails
  fast with a typed error instead of becoming a query;
- text must not contain NUL bytes: PostgreSQL ``text`` and ``jsonb`` cannot store them, and the
  driver's error would surface much later and much less clearly;
- file paths are normalised relative POSIX paths (`normalize_path`);
- sizes are limited (`Limits`, from the settings) and measured in UTF-8 bytes.

Failures become `app_data.errors.InvalidInputError` (or its subclasses `InvalidPathError`,
`ContentTooLargeError`, `InvalidCursorError`), never pydantic's own error type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from app_data.errors import AppDataError, InvalidCursorError, InvalidInputError, InvalidPathError
from app_data.models import Plan, ProjectStatus, ProjectType, SandboxState, UserStatus

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_PATH_BYTES",
    "DirectoryEntry",
    "EditedFile",
    "FileEdit",
    "FileInfo",
    "FileRecord",
    "FileWindow",
    "FileWrite",
    "GrepHits",
    "GrepLine",
    "Limits",
    "Page",
    "ProjectCreate",
    "ProjectRecord",
    "ThoughtCreate",
    "ThoughtRecord",
    "ThreadSummary",
    "UserCreate",
    "UserRecord",
    "decode_cursor",
    "encode_cursor",
    "normalize_path",
    "parse",
]

MAX_PAGE_SIZE = 500
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 64

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# -- field rules --------------------------------------------------------------------------------


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes (PostgreSQL text cannot store them)")
    return value


def _no_control(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _lone_surrogate(value: str) -> str | None:
    if value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return value[exc.start]
    return None


def _storable_text(value: str) -> str:
    _no_nul(value)
    bad = _lone_surrogate(value)
    if bad is not None:
        raise ValueError(
            f"must be valid Unicode: it holds a lone surrogate (U+{ord(bad):04X}), "
            "which PostgreSQL cannot store"
        )
    return value


def _json_without_nul(value: Any, where: str = "metadata", depth: int = 0) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_METADATA_DEPTH} levels deep")
    if isinstance(value, str):
        _storable_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} keys must be strings")
            _storable_text(key)
            _json_without_nul(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _json_without_nul(item, where, depth + 1)
    elif not (value is None or isinstance(value, bool | int | float)):
        raise ValueError(f"{where} must be JSON: {type(value).__name__} is not")


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    _json_without_nul(value)
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except ValueError:
        raise ValueError("metadata must be JSON (NaN and infinities are not)") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes of JSON; the limit is {MAX_METADATA_BYTES}")
    return value


Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", strict=True)
]
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$", strict=True)]
WalletAddress = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,256}$", strict=True)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, strict=True),
    AfterValidator(_no_control),
]
LongText = Annotated[
    str, StringConstraints(max_length=100_000, strict=True), AfterValidator(_no_nul)
]
PlainText = Annotated[str, StringConstraints(strict=True), AfterValidator(_no_nul)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]


def normalize_path(raw: str) -> str:
    """Return `raw` as a normalised relative POSIX path, or raise `InvalidPathError`.

    Normalisation: Unicode NFC, empty and ``.`` segments removed (``src//./a.py`` ->
    ``src/a.py``), so one file has one spelling. Refused: NUL bytes and control characters,
    backslashes, absolute paths (``/x``, ``C:x``), any ``..`` segment (traversal), a trailing
    slash (a directory, not a file), and paths over 1024 bytes or segments over 255 bytes.
    """
    if not isinstance(raw, str):
        raise InvalidPathError(f"a path must be a string, not {type(raw).__name__}")
    if "\x00" in raw:
        raise InvalidPathError("path contains a NUL byte")
    if _lone_surrogate(raw) is not None:
        raise InvalidPathError(f"path {raw!r} is not valid Unicode (it holds a lone surrogate)")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise InvalidPathError(f"path {raw!r} contains control characters")
    if "\\" in raw:
        raise InvalidPathError(f"path {raw!r} contains a backslash: use '/' between segments")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise InvalidPathError(f"path {raw!r} is absolute: paths are relative to the project")
    if raw.endswith("/"):
        raise InvalidPathError(f"path {raw!r} ends with '/': it names a directory, not a file")
    path = unicodedata.normalize("NFC", raw)
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidPathError(f"path {raw!r} leaves the project ('..' segments are refused)")
    if not segments:
        raise InvalidPathError("path is empty")
    for segment in segments:
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPathError(f"a segment of {raw!r} is over {MAX_SEGMENT_BYTES} bytes")
    normalised = "/".join(segments)
    if len(normalised.encode()) > MAX_PATH_BYTES:
        raise InvalidPathError(f"path is over {MAX_PATH_BYTES} bytes")
    return normalised


def _path_prefix(raw: str) -> str:
    """A listing prefix: like a path, but may end with '/' and may be a partial segment."""
    if raw == "":
        return raw
    trailing = raw.endswith("/")
    return normalize_path(raw.rstrip("/")) + ("/" if trailing else "")


FilePath = Annotated[str, AfterValidator(normalize_path)]
PathPrefix = Annotated[str, AfterValidator(_path_prefix)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, strict=True)]

# -- inputs -------------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UserCreate(_Input):
    """A new user."""

    wallet_address: WalletAddress
    username: Name | None = None
    id: Identifier | None = None
    current_plan: Plan = Plan.FREE
    status: UserStatus = UserStatus.ACTIVE


class ProjectCreate(_Input):
    """A new project of an existing user."""

    user_id: Identifier
    name: Name
    type: ProjectType
    description: LongText | None = None
    metadata: JsonObject | None = None
    id: Identifier | None = None


class FileWrite(_Input):
    """One file to save: its path (normalised) and its whole content."""

    path: FilePath
    content: PlainText
    encoding: Literal["utf-8", "base64"] = "utf-8"


class FileEdit(_Input):
    """An exact-text replacement in one file (`AppDataService.edit_file`)."""

    project_id: Identifier
    path: FilePath
    old_text: PlainText
    new_text: PlainText
    replace_all: Annotated[bool, Field(strict=True)] = False


class ThoughtCreate(_Input):
    """A thought to record for a project."""

    project_id: Identifier
    kind: Kind
    content: PlainText
    metadata: JsonObject | None = None
    thread_id: Identifier | None = None


class ProjectRef(_Input):
    project_id: Identifier


class UserRef(_Input):
    user_id: Identifier


class FileRef(_Input):
    project_id: Identifier
    path: FilePath


class ProjectPageQuery(_Input):
    user_id: Identifier
    limit: PageSize = 50
    cursor: str | None = None


class FileQuery(_Input):
    project_id: Identifier
    prefix: PathPrefix | None = None
    include_deleted: bool = False
    limit: PageSize = 100
    cursor: str | None = None


class ThoughtQuery(_Input):
    project_id: Identifier
    kind: Kind | None = None
    limit: PageSize = 50
    cursor: str | None = None


class ThoughtRetention(_Input):
    project_id: Identifier
    kind: Kind | None = None
    keep: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] | None = None  # a bigint
    cutoff: AwareDatetime | None = None
    older_than: timedelta | None = None


class ProjectStatusChange(_Input):
    project_id: Identifier
    status: ProjectStatus


class SandboxChange(_Input):
    project_id: Identifier
    state: SandboxState
    sandbox_id: Identifier | None = None


class WalletRef(_Input):
    wallet_address: WalletAddress


class Limits(BaseModel):
    """Size limits the service enforces (from `AppDataSettings`)."""

    model_config = ConfigDict(frozen=True)

    max_file_bytes: int = 1024 * 1024
    max_files_per_batch: int = 10_000
    max_thought_bytes: int = 64 * 1024


def parse(model: type[M], **data: Any) -> M:
    """Validate `data` as `model`, turning any failure into a typed `InvalidInputError`.

    A rule that raised one of app_data's own errors (a bad path) surfaces as that error.
    """
    try:
        return model(**data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        for problem in problems:
            cause = (problem.get("ctx") or {}).get("error")
            if isinstance(cause, AppDataError):
                raise cause from None
        summary = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc']) or model.__name__}: {problem['msg']}"
            for problem in problems
        )
        raise InvalidInputError(f"invalid {model.__name__}: {summary}") from None


# -- records ------------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class UserRecord(_Record):
    """A user as read from the database (the GitHub token stays a `SecretStr`)."""

    id: str
    wallet_address: str
    username: str | None
    current_plan: Plan
    status: UserStatus
    customer_id: str | None
    current_payment_method_id: str | None
    github_username: str | None
    github_token: SecretStr | None
    created_at: datetime
    updated_at: datetime


class ProjectRecord(_Record):
    """A project as read from the database."""

    id: str
    user_id: str
    name: str
    type: ProjectType
    status: ProjectStatus
    sandbox_state: SandboxState
    active_sandbox_id: str | None
    description: str | None
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    created_at: datetime
    updated_at: datetime
    last_active: datetime
    ended_at: datetime | None


class FileInfo(_Record):
    """A file without its content (what listings return)."""

    project_id: str
    path: str
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    encoding: str = "utf-8"

    @property
    def deleted(self) -> bool:
        """Whether the file is soft-deleted (restorable until purged)."""
        return self.deleted_at is not None


class FileRecord(FileInfo):
    """A file with its content."""

    id: str
    content: str


class EditedFile(FileRecord):
    """A file after an edit, with how many occurrences of the old text were replaced."""

    occurrences: int


class FileWindow(_Record):
    """Some lines of a file, cut in the database (`AppDataService.read_lines`).

    Lines end at ``\\n``. `text` holds lines `start_line`..`end_line` (1-based, with their line
    breaks), or the whole content of a binary or blank file (then both are None). `past_end`:
    the window starts after the last line (`text` is empty).
    """

    path: str
    encoding: str
    text: str
    total_lines: int
    start_line: int | None
    end_line: int | None
    past_end: bool = False
    created_at: datetime
    updated_at: datetime


class GrepLine(_Record):
    """A line of a file: its path, its 1-based number and its text (without the line break)."""

    path: str
    line: int
    text: str


class GrepHits(_Record):
    """The lines holding a literal, and the context lines asked for around them."""

    matches: list[GrepLine]
    truncated: bool
    context: list[GrepLine] = []


class DirectoryEntry(_Record):
    """A file or a subdirectory directly inside a directory (`AppDataService.list_directory`)."""

    path: str
    is_dir: bool
    size_bytes: int
    updated_at: datetime | None


class ThoughtRecord(_Record):
    """A thought as read from the database."""

    id: str
    project_id: str
    kind: str
    content: str
    metadata: dict[str, Any] | None = Field(validation_alias="metadata_")
    thread_id: str | None
    created_at: datetime


class ThreadSummary(_Record):
    """A LangGraph thread of a project, from the read-only checkpoint mapping."""

    thread_id: str
    checkpoints: int
    last_checkpoint_id: str
    last_activity: datetime | None


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated listing; pass `next_cursor` back for the next one."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None


# -- cursors ------------------------------------------------------------------------------------


def encode_cursor(listing: str, key: list[str]) -> str:
    """An opaque cursor for `listing` positioned after the row whose sort key is `key`."""
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, size: int) -> list[str]:
    """The sort key in `cursor`, checking it was made by `listing` with `size` parts.

    Raises:
        InvalidCursorError: malformed, or made by another listing.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursorError("the pagination cursor is malformed") from None
    if (
        not isinstance(data, list)
        or len(data) != size + 1
        or data[0] != listing
        or not all(isinstance(part, str) and "\x00" not in part for part in data[1:])
    ):
        raise InvalidCursorError(f"the pagination cursor was not made by the {listing} listing")
    return [str(part) for part in data[1:]]
