"""The switch to partitioned tables (``CHECKPOINT_PG_TEST_PARTITIONS``) applies here too."""

from tests.checkpoint.conftest import partitioned_tables

__all__ = ["partitioned_tables"]
