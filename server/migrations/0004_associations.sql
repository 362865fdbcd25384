-- tend-server schema v4: associations (scheduled documents and recipes) and
-- compliance. Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS associations (
    id TEXT PRIMARY KEY,
    document TEXT,
    recipe TEXT,
    targets TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timezone TEXT,
    params TEXT NOT NULL,
    raw_params TEXT NOT NULL,
    max_concurrency TEXT,
    max_errors TEXT,
    apply_only_at_cron_interval BIGINT NOT NULL DEFAULT 0,
    token_id TEXT NOT NULL,
    token_name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope TEXT,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    -- The last slot fired (ms); the scheduler fires only slots after it.
    last_slot_ms BIGINT
);
-- One row per run, keyed by its slot: a slot can fire only once.
CREATE TABLE IF NOT EXISTS association_runs (
    association_id TEXT NOT NULL,
    slot_ms BIGINT NOT NULL,
    trig TEXT NOT NULL,
    command_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    skipped BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (association_id, slot_ms)
);
CREATE TABLE IF NOT EXISTS compliance (
    id BIGINT NOT NULL,
    association_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT,
    changes TEXT NOT NULL DEFAULT '[]',
    command_id TEXT NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS compliance_pair ON compliance (association_id, node_id);
