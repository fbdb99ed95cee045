"""``python -m app_data.migrations upgrade|downgrade REV|stamp REV|current|check``."""

from __future__ import annotations

import asyncio
import sys

from app_data.errors import AppDataError
from app_data.migrations import current, downgrade, pending_changes, stamp, upgrade
from app_data.session import get_settings

USAGE = (
    "usage: python -m app_data.migrations "
    "upgrade [REV] | downgrade REV | stamp [REV] | current | check"
)


async def _main(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    url = get_settings().database_url.get_secret_value()
    verb, args = argv[0], argv[1:]
    if verb == "upgrade":
        await upgrade(url, *args[:1])
    elif verb == "downgrade" and args:
        await downgrade(url, args[0])
    elif verb == "stamp":
        await stamp(url, *args[:1])
    elif verb == "current":
        print(await current(url) or "(none)")
    elif verb == "check":
        changes = await pending_changes(url)
        for change in changes:
            print(change)
        return 1 if changes else 0
    else:
        print(USAGE, file=sys.stderr)
        return 2
    return 0


def main() -> int:
    """Run the command line; errors print their (masked) message and exit 1."""
    try:
        return asyncio.run(_main(sys.argv[1:]))
    except AppDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
