-- tend-server schema v2: command documents and run command. Portable SQL: the same
-- file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS documents (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    delivery TEXT NOT NULL,
    params_shown TEXT NOT NULL,
    targets TEXT NOT NULL,
    max_concurrency BIGINT NOT NULL,
    max_errors BIGINT NOT NULL,
    delivery_timeout_ms BIGINT NOT NULL,
    run_timeout_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    comment TEXT,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS commands_status ON commands (status);
CREATE INDEX IF NOT EXISTS commands_created ON commands (created_ms);
CREATE TABLE IF NOT EXISTS invocations (
    command_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    ord BIGINT NOT NULL,
    hostname TEXT NOT NULL,
    status TEXT NOT NULL,
    released_ms BIGINT,
    acked_ms BIGINT,
    exit_code BIGINT,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    full_stdout TEXT NOT NULL DEFAULT '',
    full_stderr TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    ended_at TEXT,
    duration_ms BIGINT,
    reason TEXT,
    reboot BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (command_id, node_id)
);
CREATE INDEX IF NOT EXISTS invocations_node ON invocations (node_id, status);
