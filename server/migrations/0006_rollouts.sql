-- tend-server schema v6: change sets (plans) and progressive rollouts.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

-- A converge step's run report (a plan's dry-run, a rollout's converge).
ALTER TABLE invocations ADD COLUMN report TEXT;

-- Recipe associations in audit mode (a scheduled dry-run) and what their
-- last audit found on each node: Puppet's noop_pending.
ALTER TABLE associations ADD COLUMN mode TEXT;
ALTER TABLE nodes ADD COLUMN pending BIGINT;

-- The version of a recipe a node converges, set by rollouts; it wins over
-- the assignment's version for that node.
CREATE TABLE IF NOT EXISTS pins (
    node_id TEXT NOT NULL,
    recipe TEXT NOT NULL,
    version TEXT NOT NULL,
    rollout_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (node_id, recipe)
);

CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    version TEXT NOT NULL,
    targets TEXT NOT NULL,
    not_assigned TEXT NOT NULL,
    command_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    version TEXT NOT NULL,
    targets TEXT NOT NULL,
    strategy TEXT NOT NULL,
    -- The RolloutCreate it was started with (JSON).
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    -- Operator requests, read by the driver: pause, stop, rollback.
    request TEXT,
    token_id TEXT NOT NULL,
    token_name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope TEXT,
    created_at TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    -- The rollback's command, once started (its id is fixed before).
    rollback_command TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_status ON rollouts (status);
-- One active rollout per recipe, whatever races the check before the insert.
CREATE UNIQUE INDEX IF NOT EXISTS rollouts_one_active ON rollouts (recipe)
    WHERE status IN ('Running', 'Paused', 'RollingBack');

CREATE TABLE IF NOT EXISTS rollout_batches (
    rollout_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    grp TEXT,
    wait_after_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    -- When the current phase (converge, health, bake) began.
    phase_ms BIGINT,
    gates TEXT NOT NULL DEFAULT '[]',
    started_at TEXT,
    ended_at TEXT,
    PRIMARY KEY (rollout_id, idx)
);

CREATE TABLE IF NOT EXISTS rollout_nodes (
    rollout_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    batch BIGINT NOT NULL,
    before_version TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (rollout_id, node_id)
);
