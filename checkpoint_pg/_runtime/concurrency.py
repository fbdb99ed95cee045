"""The primitives whose blocking and async forms differ by more than ``await``.

Async sources use the a-prefixed names; the blocking modules generated from them
(tests/tools/async_to_sync.py) use the plain ones.
"""

from __future__ import annotations

import asyncio
import threading
import time

__all__ = ["ALock", "Lock", "asleep", "sleep"]

Lock = threading.Lock
ALock = asyncio.Lock
sleep = time.sleep
asleep = asyncio.sleep
