-- Indexes the local Tansu 0.6 broker's SQLite engine needs and does not
-- create. Applied by deploy/local/tansu-broker before every start of the
-- broker (the stack's and the tests'); idempotent.
--
-- Found by running EXPLAIN QUERY PLAN over every query of tansu-storage
-- 0.6.0's SQLite engine (src/sql/*.sql, src/lite/*.sql) against its schema
-- (src/ddl/*.sql). Every other query already searches a primary key or a
-- unique index; the full scans left are on cold paths (topic deletion,
-- transactional producers) or over rows a query has just narrowed down.

-- header_fetch.sql (Fetch: once per fetched record) looks a record's headers
-- up by (topition, offset_id); without this every lookup scans the whole
-- header table, four rows per meshflow message. The same index serves the
-- foreign-key cascade from record to header when retention deletes records
-- (lite/policy_delete.sql): without it each deleted record scans the header
-- table too. Also header_delete_by_topic.sql (DeleteTopics).
create index if not exists meshflow_header_record on header (topition, offset_id);

-- watermark_select_no_update.sql and watermark_update.sql (Produce: every
-- batch), watermark_select.sql (Fetch: every partition fetched),
-- list_latest_offset_committed.sql and list_latest_offset_uncommitted.sql
-- (ListOffsets) find a partition's watermark by topition; the table has no
-- index on it, so each of them scans it. One row per partition, so the scan
-- is short, but it sits on the produce and fetch paths.
create index if not exists meshflow_watermark_topition on watermark (topition);
