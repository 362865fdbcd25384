-- tend-server schema v5: one row the server writes every few seconds, so
-- that a store that cannot take writes (disk full, I/O errors, a lost
-- connection) is noticed, logged once and shown in /metrics, and its
-- recovery too. Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS health (
    replica TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
