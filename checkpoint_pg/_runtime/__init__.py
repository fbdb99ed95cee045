"""The runtime the savers, the store and app_data share: it imports none of them.

What lives here is plumbing with no knowledge of checkpoints or store items: reading
named SQL files, and (see docs/architecture.md) the statement protocol, its drivers,
connection handling, retries and logging.
"""
