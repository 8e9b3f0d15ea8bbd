-- Push invalidation: a statement that touches users' rows sends one NOTIFY trading_api_changes
-- per user it touched, with the user's UUID as payload; the pool's supervisor LISTENs and makes
-- those users' cached views stale (docs/design/cache-freshness.md).
--
-- Postgres delivers notifications only when the transaction commits (a rollback sends nothing)
-- and folds identical ones of one transaction into one, so a batch of 1,000 rows of one user is
-- one notification. Statement-level triggers with transition tables catch every writer: this
-- API, the bot writing straight into Postgres, bulk loads, updates and deletes. Changes that
-- touch every user (TRUNCATE, the instruments' contract sizes) send `*`.

CREATE OR REPLACE FUNCTION notify_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('trading_api_changes', u::text) FROM (SELECT DISTINCT user_id AS u FROM new_rows) t;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify('trading_api_changes', u::text)
        FROM (SELECT user_id AS u FROM new_rows UNION SELECT user_id FROM old_rows) t;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('trading_api_changes', u::text) FROM (SELECT DISTINCT user_id AS u FROM old_rows) t;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION notify_everyone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trading_api_changes', '*');
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER reconciliation_logs_notify_insert AFTER INSERT ON reconciliation_logs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER reconciliation_logs_notify_update AFTER UPDATE ON reconciliation_logs
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER reconciliation_logs_notify_delete AFTER DELETE ON reconciliation_logs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER reconciliation_logs_notify_truncate AFTER TRUNCATE ON reconciliation_logs
    FOR EACH STATEMENT EXECUTE FUNCTION notify_everyone_changed();

CREATE OR REPLACE TRIGGER equity_snapshots_notify_insert AFTER INSERT ON equity_snapshots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER equity_snapshots_notify_update AFTER UPDATE ON equity_snapshots
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER equity_snapshots_notify_delete AFTER DELETE ON equity_snapshots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed();
CREATE OR REPLACE TRIGGER equity_snapshots_notify_truncate AFTER TRUNCATE ON equity_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION notify_everyone_changed();

CREATE OR REPLACE TRIGGER instruments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON instruments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_everyone_changed();
