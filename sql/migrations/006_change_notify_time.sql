-- The change notifications of 004 also carry when the writing statement started, so the pool can
-- measure how long a commit takes to reach the cache (trading_api_invalidation_delay_seconds).
-- Payload: '<user uuid> <microseconds since the epoch>' or '* <microseconds>'. One statement's
-- notifications stay identical, so Postgres still folds them into one per user and statement.

CREATE OR REPLACE FUNCTION notify_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    written_at text := (extract(epoch FROM statement_timestamp()) * 1000000)::bigint::text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('trading_api_changes', u::text || ' ' || written_at)
        FROM (SELECT DISTINCT user_id AS u FROM new_rows) t;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM pg_notify('trading_api_changes', u::text || ' ' || written_at)
        FROM (SELECT user_id AS u FROM new_rows UNION SELECT user_id FROM old_rows) t;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('trading_api_changes', u::text || ' ' || written_at)
        FROM (SELECT DISTINCT user_id AS u FROM old_rows) t;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION notify_everyone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trading_api_changes', '* ' || (extract(epoch FROM statement_timestamp()) * 1000000)::bigint::text);
    RETURN NULL;
END $$;
