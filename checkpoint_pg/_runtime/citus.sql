-- Citus (distributed PostgreSQL): detecting it and distributing tables (see citus.py).

-- name: citus_installed
-- Whether this database has the citus extension: cross-table statements then take their
-- Citus forms. Catalog only, no Citus function is named, so it runs on any PostgreSQL.
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');

-- name: distribution
-- How each named table is distributed now: 'h' hash (with its column), 'n' reference, or
-- NULL when Citus does not manage it. Runs only where citus_installed said yes.
SELECT t.name, p.partmethod::text,
       CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END
FROM unnest(%(names)s::text[]) AS t(name)
LEFT JOIN pg_dist_partition AS p ON p.logicalrelid = to_regclass(t.name);

-- name: distribute
-- One table sharded by hash of `column`, its shards placed with those of `colocate`'s.
SELECT create_distributed_table(%(table)s::regclass, %(column)s, colocate_with => %(colocate)s);

-- name: make_reference
-- A small table every node keeps a whole copy of (the migration tables).
SELECT create_reference_table(%(table)s::regclass);
