-- tend-server schema v3: automation executions. Portable SQL: the same file
-- runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    body TEXT NOT NULL,
    params TEXT NOT NULL,
    params_shown TEXT NOT NULL,
    status TEXT NOT NULL,
    token_id TEXT NOT NULL,
    token_name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
-- One row per step attempt, in order: the execution's timeline and state.
CREATE TABLE IF NOT EXISTS execution_steps (
    execution_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    started_ms BIGINT,
    ended_at TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    command_id TEXT,
    wake_ms BIGINT,
    approvals TEXT NOT NULL DEFAULT '[]',
    resumed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, seq)
);
