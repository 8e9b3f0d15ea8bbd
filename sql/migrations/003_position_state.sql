-- position_state: the latest row of every position, kept by triggers on reconciliation_logs.
--
-- A position is the sync/close rows of one user with one mt5_position_id; its state is the
-- latest row by (created_at, id). Finding that with DISTINCT ON reads every row the user ever
-- wrote for positions; this table makes "open positions" an index range of a few rows.
-- Statement-level triggers with transition tables keep it exact for any writer (the bot, bulk
-- loads, updates, deletes) at the cost of one indexed lookup per touched position.

CREATE TABLE IF NOT EXISTS position_state (
    user_id   uuid        NOT NULL,
    ticket    bigint      NOT NULL,
    latest_id uuid        NOT NULL,   -- the position's latest reconciliation_logs row
    opened_at timestamptz NOT NULL,   -- created_at of its first row
    updated_at timestamptz NOT NULL,  -- created_at of its latest row
    is_open   boolean     NOT NULL,   -- latest row is a sync row with close_reason IS NULL
    PRIMARY KEY (user_id, ticket)
);

-- Open positions of one user in API order (updated_at newest first, then ticket).
CREATE INDEX IF NOT EXISTS position_state_open_idx
    ON position_state (user_id, updated_at DESC, ticket) WHERE is_open;

-- Recomputes the state of the given (user, ticket) pairs from reconciliation_logs.
-- With only_forward (inserts), a state is replaced only by a later latest row, so two writers
-- inserting rows of one position concurrently cannot leave the older row as its state.
CREATE OR REPLACE FUNCTION position_state_refresh(users uuid[], tickets bigint[], only_forward boolean)
RETURNS void LANGUAGE sql AS $$
    WITH touched AS (
        SELECT DISTINCT u AS user_id, t AS ticket
        FROM unnest(users, tickets) AS k(u, t)
        WHERE t IS NOT NULL
    ),
    gone AS (
        DELETE FROM position_state p
        USING touched k
        WHERE p.user_id = k.user_id AND p.ticket = k.ticket
          AND NOT EXISTS (SELECT 1 FROM reconciliation_logs l
                          WHERE l.user_id = k.user_id AND l.mt5_position_id = k.ticket)
    )
    INSERT INTO position_state (user_id, ticket, latest_id, opened_at, updated_at, is_open)
    SELECT k.user_id, k.ticket, latest.id, first.created_at, latest.created_at,
           latest.event_type = 'sync' AND latest.close_reason IS NULL
    FROM touched k
    CROSS JOIN LATERAL (
        SELECT l.id, l.created_at, l.event_type, l.close_reason
        FROM reconciliation_logs l
        WHERE l.user_id = k.user_id AND l.mt5_position_id = k.ticket
        ORDER BY l.created_at DESC, l.id DESC
        LIMIT 1) latest
    CROSS JOIN LATERAL (
        SELECT l.created_at
        FROM reconciliation_logs l
        WHERE l.user_id = k.user_id AND l.mt5_position_id = k.ticket
        ORDER BY l.created_at ASC, l.id ASC
        LIMIT 1) first
    ON CONFLICT (user_id, ticket) DO UPDATE
        SET latest_id = EXCLUDED.latest_id,
            opened_at = CASE WHEN only_forward THEN least(position_state.opened_at, EXCLUDED.opened_at)
                             ELSE EXCLUDED.opened_at END,
            updated_at = EXCLUDED.updated_at, is_open = EXCLUDED.is_open
        WHERE NOT only_forward
           OR (EXCLUDED.updated_at, EXCLUDED.latest_id) >= (position_state.updated_at, position_state.latest_id);
$$;

CREATE OR REPLACE FUNCTION position_state_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM position_state_refresh(array_agg(user_id), array_agg(mt5_position_id), true)
    FROM new_rows WHERE mt5_position_id IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION position_state_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM position_state_refresh(array_agg(user_id), array_agg(mt5_position_id), false)
    FROM (SELECT user_id, mt5_position_id FROM new_rows
          UNION ALL SELECT user_id, mt5_position_id FROM old_rows) touched
    WHERE mt5_position_id IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION position_state_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM position_state_refresh(array_agg(user_id), array_agg(mt5_position_id), false)
    FROM old_rows WHERE mt5_position_id IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION position_state_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE position_state;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS position_state_insert ON reconciliation_logs;
CREATE TRIGGER position_state_insert AFTER INSERT ON reconciliation_logs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION position_state_after_insert();

DROP TRIGGER IF EXISTS position_state_update ON reconciliation_logs;
CREATE TRIGGER position_state_update AFTER UPDATE ON reconciliation_logs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION position_state_after_update();

DROP TRIGGER IF EXISTS position_state_delete ON reconciliation_logs;
CREATE TRIGGER position_state_delete AFTER DELETE ON reconciliation_logs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION position_state_after_delete();

DROP TRIGGER IF EXISTS position_state_truncate ON reconciliation_logs;
CREATE TRIGGER position_state_truncate AFTER TRUNCATE ON reconciliation_logs
    FOR EACH STATEMENT EXECUTE FUNCTION position_state_after_truncate();

-- Rows written before this migration existed.
SELECT position_state_refresh(array_agg(user_id), array_agg(mt5_position_id), false)
FROM reconciliation_logs
WHERE mt5_position_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM position_state);
