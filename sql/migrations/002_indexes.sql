-- One index per access path; every endpoint reads only the caller's rows.

-- logs?hours&limit, recent_events: the user's rows, newest first.
CREATE INDEX IF NOT EXISTS reconciliation_logs_user_time_idx
    ON reconciliation_logs (user_id, created_at DESC, id DESC);

-- status: the latest sync row and the count of syncs (index-only).
CREATE INDEX IF NOT EXISTS reconciliation_logs_user_sync_time_idx
    ON reconciliation_logs (user_id, created_at DESC, id DESC)
    WHERE event_type = 'sync';

-- guards: the user's guard rows of the last 15 minutes.
CREATE INDEX IF NOT EXISTS reconciliation_logs_user_guard_time_idx
    ON reconciliation_logs (user_id, created_at DESC, id DESC)
    WHERE event_type = 'guard_trigger';

-- positions: the rows of one position, newest first (position_state upkeep, opened_at).
CREATE INDEX IF NOT EXISTS reconciliation_logs_user_ticket_time_idx
    ON reconciliation_logs (user_id, mt5_position_id, created_at DESC, id DESC)
    WHERE mt5_position_id IS NOT NULL;

-- drawdown: the latest equity snapshot.
CREATE INDEX IF NOT EXISTS equity_snapshots_user_time_idx
    ON equity_snapshots (user_id, recorded_at DESC);
