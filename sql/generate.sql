-- Demo and benchmark data, generated server-side (set-based: one INSERT ... SELECT per table).
--
--   psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 \
--        -v users=1000 -v rows_per_user=1000 -v seed=42 [-v force=1] -f sql/generate.sql
-- (scripts/generate-data.sh USERS ROWS_PER_USER wraps this.)
--
-- Deterministic for a given (users, rows_per_user, seed): ids, tickets, prices, statuses come
-- from hashes, not random(); timestamps are relative to now() (last 7 days).
-- Idempotent: the parameters of the loaded dataset are kept in demo_dataset; the same dataset
-- is not loaded twice (force=1 regenerates it, e.g. to bring its timestamps up to now;
-- max_age=N regenerates it when it was loaded more than N seconds ago).
-- Another dataset replaces the generated users (and only those: ids in the range below).
--
-- Users i = 1..users:  id 00000000-0000-4000-8000-<i as 12 hex digits>,
--                      email demo-user-<i>@example.com
-- Per user, exactly rows_per_user reconciliation_logs rows:
--   * guard_trigger rows (rows_per_user/50, at least 1) spread over 7 days; users with
--     i % 3 = 0 have two within the last 15 minutes: critical + warning (even i) or
--     warning + normal (odd i); everybody else has none in the last 20 minutes.
--   * position rows: closed positions of 10 rows (9 syncs + a close row), oldest first, then
--     2 + i % 4 open positions (up to 8 sync rows each, interleaved, the newest rows).
--     Open position #0 diverges (latest row matched = 2 + divergence_reason) when i % 4 = 1;
--     open position #1 has current_price NULL on its latest row when i % 6 = 2.
--     Sync status ~90 % success, 6 % partial, 4 % failed (failed rows carry error_message);
--     the user's latest sync is failed when i % 20 = 3, partial when i % 20 = 5.
--     The latest sync is 10-210 s old for i % 10 < 7, else 1-6 hours (status "idle").
--     Every position row of a user has its own created_at.
-- Equity snapshots (max(2, rows_per_user/10) per user, none when i % 50 = 0), peak_equity the
-- running maximum; the latest drawdown is 10.5-14.5 % when i % 10 = 1 (warning),
-- 20.5-27.5 % when i % 10 = 2 (critical), below 6 % otherwise.

\set ON_ERROR_STOP 1
\if :{?users}
\else
\set users 1000
\endif
\if :{?rows_per_user}
\else
\set rows_per_user 1000
\endif
\if :{?seed}
\else
\set seed 42
\endif
\if :{?force}
\else
\set force 0
\endif
\if :{?max_age}
\else
\set max_age 0
\endif

SET client_min_messages = warning;
SELECT pg_advisory_lock(hashtext('trading-api generate.sql')) \g /dev/null

CREATE TABLE IF NOT EXISTS demo_dataset (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    users         integer NOT NULL,
    rows_per_user integer NOT NULL,
    seed          integer NOT NULL,
    generated_at  timestamptz NOT NULL,
    load_seconds  numeric
);

SELECT (EXISTS (SELECT 1 FROM demo_dataset
                WHERE users = :users AND rows_per_user = :rows_per_user AND seed = :seed
                  AND (:max_age = 0 OR generated_at > now() - :max_age * interval '1 second'))
        AND (SELECT count(*) FROM users
             WHERE id BETWEEN '00000000-0000-4000-8000-000000000000'
                          AND '00000000-0000-4000-8000-ffffffffffff') = :users
        AND :force = 0) AS already_loaded \gset

\if :already_loaded
SELECT to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') AS loaded_at
FROM demo_dataset \gset
\echo '[generate] dataset of' :users 'users x' :rows_per_user 'rows, seed' :seed 'already loaded at' :loaded_at '- skipped'
\else

SELECT clock_timestamp() AS t0 \gset
\echo '[generate]' :users 'users x' :rows_per_user 'rows per user, seed' :seed

-- Deterministic uniform [0, 1) from (user, row, salt).
CREATE OR REPLACE FUNCTION pg_temp.rnd(u bigint, s bigint, salt integer, seed bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashint8extended(u * 4294967296 + s * 64 + salt, seed) & 2147483647)::float8
           / 2147483648.0
$$;

-- Row ids: <user:8 hex><kind:4 hex>4<seed:3 hex>8<row:15 hex>, a valid version-4-shaped UUID
-- that grows in insertion order, so the primary key is appended to instead of written at
-- random (halves the load time of reconciliation_logs).
CREATE OR REPLACE FUNCTION pg_temp.row_id(u bigint, kind integer, s bigint, seed bigint)
RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(u), 8, '0') || lpad(to_hex(kind), 4, '0') || '4'
            || lpad(to_hex(seed & 4095), 3, '0') || '8' || lpad(to_hex(s), 15, '0'))::uuid
$$;

BEGIN;

-- Remove the previously generated users. TRUNCATE when they are all there is (fast; the
-- truncate trigger empties position_state), else DELETE them (the triggers keep position_state).
SELECT NOT EXISTS (SELECT 1 FROM users
                   WHERE id NOT BETWEEN '00000000-0000-4000-8000-000000000000'
                                    AND '00000000-0000-4000-8000-ffffffffffff')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE contype = 'f' AND confrelid = 'users'::regclass
                     AND conrelid NOT IN ('reconciliation_logs'::regclass,
                                          'equity_snapshots'::regclass)) AS only_generated \gset
\if :only_generated
TRUNCATE reconciliation_logs, equity_snapshots, users;
\else
DELETE FROM reconciliation_logs WHERE user_id BETWEEN '00000000-0000-4000-8000-000000000000'
                                                  AND '00000000-0000-4000-8000-ffffffffffff';
DELETE FROM equity_snapshots WHERE user_id BETWEEN '00000000-0000-4000-8000-000000000000'
                                               AND '00000000-0000-4000-8000-ffffffffffff';
DELETE FROM users WHERE id BETWEEN '00000000-0000-4000-8000-000000000000'
                               AND '00000000-0000-4000-8000-ffffffffffff';
\endif
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el \gset
\echo '[generate]   previous data removed' :el 's'

INSERT INTO users (id, email, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
       'demo-user-' || i || '@example.com',
       now() - interval '30 days'
FROM generate_series(1, :users) AS i;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el \gset
\echo '[generate]   users' :el 's'

INSERT INTO reconciliation_logs (
    id, user_id, signal_id, event_type, status, mt5_position_id, symbol, direction, volume,
    entry_price, current_price, take_profit, stop_loss, matched, divergence_reason,
    slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms,
    guard_condition, guard_level, price_gap_pct, error_message, created_at, updated_at)
WITH
-- vol scales price moves: USDJPY P&L comes out in yen (the contract's formula has no
-- currency conversion), so its moves are kept small to give P&L of the same size as the rest.
sym (k, symbol, base_price, decimals, contract_size, vol) AS (VALUES
    (0, 'XAUUSD', 1950.0, 2, 100.0, 1.0), (1, 'XAGUSD', 23.5, 3, 5000.0, 1.0),
    (2, 'EURUSD', 1.085, 5, 100000.0, 1.0), (3, 'GBPUSD', 1.265, 5, 100000.0, 1.0),
    (4, 'USDJPY', 149.5, 3, 100000.0, 0.007), (5, 'BTCUSD', 61000.0, 1, 1.0, 1.0),
    (6, 'US30', 38500.0, 1, 1.0, 1.0)),                 -- US30: no instruments row
usr AS (
    SELECT u, user_id, n_guard, n_pos, l_open, n_open, n_pos - l_open AS n_closed_rows,
           (n_pos - l_open + 9) / 10 AS n_closed_pos,
           now() - CASE WHEN u % 10 < 7 THEN 10 + 200 * pg_temp.rnd(u, 0, 1, :seed)
                        ELSE 3600 + 5 * 3600 * pg_temp.rnd(u, 0, 1, :seed) END
                   * interval '1 second' AS end_at,
           interval '7 days' / greatest(n_pos, 1) AS step
    FROM (
        SELECT u, user_id, n_guard, n_pos, least(n_pos, (2 + u % 4) * 8) AS l_open,
               least(2 + u % 4, least(n_pos, (2 + u % 4) * 8)) AS n_open
        FROM (
            SELECT i AS u, ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid AS user_id,
                   least(:rows_per_user, greatest(1, :rows_per_user / 50)) AS n_guard,
                   :rows_per_user - least(:rows_per_user, greatest(1, :rows_per_user / 50)) AS n_pos
            FROM generate_series(1, :users) AS i) a) b),
-- one row per position row: which position (p), its n-th row (m), is it the position's last
prow AS (
    SELECT usr.*, s, s >= n_closed_rows AS open_pos,
           CASE WHEN s >= n_closed_rows THEN n_closed_pos + (s - n_closed_rows) % n_open
                ELSE s / 10 END AS p,
           CASE WHEN s >= n_closed_rows THEN (s - n_closed_rows) / n_open
                ELSE s % 10 END AS m,
           CASE WHEN s >= n_closed_rows
                THEN (s - n_closed_rows) / n_open
                     = (l_open - 1 - (s - n_closed_rows) % n_open) / n_open
                ELSE s % 10 = 9 OR s = n_closed_rows - 1 END AS is_last
    FROM usr CROSS JOIN LATERAL generate_series(0, n_pos - 1) AS s
    OFFSET 0),  -- OFFSET 0 (here and below): compute each column once per row instead of
                -- letting the planner paste its expression into every column that uses it
-- position attributes (a function of user and position) and row attributes
pos AS (
    SELECT prow.*, sym.symbol, sym.decimals, sym.contract_size, sym.vol,
           CASE WHEN pg_temp.rnd(u, p, 3, :seed) < 0.55 THEN 'buy' ELSE 'sell' END AS direction,
           round((0.01 + 0.99 * pg_temp.rnd(u, p, 4, :seed))::numeric, 2)::float8 AS volume,
           round((sym.base_price * (1 + (pg_temp.rnd(u, p, 5, :seed) - 0.5) * 0.04))::numeric,
                 sym.decimals) AS entry,
           pg_temp.rnd(u, p, 6, :seed) >= 0.3 AS has_tp_sl,
           open_pos AND p - n_closed_pos = 0 AND u % 4 = 1 AND is_last AS divergent,
           open_pos AND p - n_closed_pos = 1 AND u % 6 = 2 AND is_last AS no_price,
           s = n_pos - 1 AS user_last,
           pg_temp.rnd(u, s, 7, :seed) AS r_status,
           pg_temp.rnd(u, s, 8, :seed) AS r_misc
    FROM prow
    JOIN sym ON sym.k = CASE WHEN pg_temp.rnd(u, p, 1, :seed) < 0.04 THEN 6
                             ELSE floor(6 * pg_temp.rnd(u, p, 2, :seed))::int END
    OFFSET 0),
pos2 AS (
    SELECT pos.*,
           CASE WHEN NOT open_pos AND is_last THEN 'close' ELSE 'sync' END AS event_type,
           CASE WHEN direction = 'buy' THEN 1 ELSE -1 END AS sgn,
           round(entry * (1 + (pg_temp.rnd(u, s, 10, :seed) - 0.5) * 0.01 * vol)::numeric, decimals) AS price,
           CASE WHEN user_last AND u % 20 = 3 THEN 'failed'
                WHEN user_last AND u % 20 = 5 THEN 'partial'
                WHEN user_last THEN 'success'
                WHEN r_status < 0.90 THEN 'success'
                WHEN r_status < 0.96 THEN 'partial'
                ELSE 'failed' END AS sync_status
    FROM pos
    OFFSET 0),
pos_rows AS (
    SELECT pg_temp.row_id(u, 0, s, :seed) AS id, user_id,
           CASE WHEN m = 0 THEN md5(:seed || '/signal/' || u || '/' || p)::uuid END AS signal_id,
           event_type,
           CASE WHEN event_type = 'close' THEN 'success' ELSE sync_status END AS status,
           u::bigint * 1000000 + p AS mt5_position_id,
           symbol, direction, volume, entry::float8 AS entry_price,
           CASE WHEN no_price THEN NULL ELSE price::float8 END AS current_price,
           CASE WHEN has_tp_sl THEN round(entry * (1 + 0.010 * sgn), decimals)::float8 END AS take_profit,
           CASE WHEN has_tp_sl THEN round(entry * (1 - 0.005 * sgn), decimals)::float8 END AS stop_loss,
           CASE WHEN divergent THEN 2
                WHEN event_type = 'sync' AND r_misc < 0.03 THEN 0
                ELSE 1 END::smallint AS matched,
           CASE WHEN divergent
                THEN (ARRAY['volume_mismatch', 'price_mismatch', 'missing_on_broker',
                            'sl_tp_mismatch'])[1 + floor(4 * r_misc)::int] END AS divergence_reason,
           CASE WHEN m = 0 THEN round((3 * r_misc)::numeric, 1)::float8 END AS slippage_pips,
           CASE WHEN event_type = 'close'
                THEN (ARRAY['take_profit', 'stop_loss', 'manual', 'bot_signal'])[1 + floor(4 * r_misc)::int]
                END AS close_reason,
           CASE WHEN event_type = 'close' THEN price::float8 END AS closed_price,
           CASE WHEN event_type = 'close'
                THEN round(((price - entry) * sgn * volume::numeric * contract_size::numeric * 0.79), 2)::float8
                END AS pnl_gbp,
           CASE WHEN event_type = 'close'
                THEN round(((price - entry) * sgn * volume::numeric * contract_size::numeric * 0.79) / 250, 2)::float8
                END AS pnl_percent,
           CASE WHEN event_type = 'close' THEN NULL
                WHEN sync_status = 'failed' THEN 2000 + floor(8000 * pg_temp.rnd(u, s, 9, :seed))::int
                ELSE 40 + floor(1500 * pg_temp.rnd(u, s, 9, :seed))::int END AS duration_ms,
           NULL::varchar AS guard_condition, NULL::varchar AS guard_level,
           NULL::float8 AS price_gap_pct,
           CASE WHEN event_type = 'sync' AND sync_status = 'failed'
                THEN (ARRAY['MT5 terminal not responding', 'broker request timed out',
                            'position not found on broker', 'order rejected: market closed'])
                     [1 + floor(4 * r_misc)::int] END AS error_message,
           -- strictly increasing per user, the latest exactly at end_at, never in the future
           end_at - (n_pos - 1 - s) * step
                  - CASE WHEN user_last THEN 0 ELSE 0.5 * pg_temp.rnd(u, s, 11, :seed) END * step
             AS created_at
    FROM pos2),
grow AS (
    SELECT usr.u, usr.user_id, g, usr.u % 3 = 0 AND g < 2 AS recent,
           pg_temp.rnd(usr.u, g, 20, :seed) AS r1, pg_temp.rnd(usr.u, g, 21, :seed) AS r2,
           pg_temp.rnd(usr.u, g, 22, :seed) AS r3
    FROM usr CROSS JOIN LATERAL generate_series(0, n_guard - 1) AS g),
guard_rows AS (
    SELECT pg_temp.row_id(u, 1, g, :seed) AS id, user_id, NULL::uuid AS signal_id,
           'guard_trigger' AS event_type, 'success' AS status, NULL::bigint AS mt5_position_id,
           sym.symbol, NULL AS direction, NULL::float8 AS volume, NULL::float8 AS entry_price,
           NULL::float8 AS current_price, NULL::float8 AS take_profit, NULL::float8 AS stop_loss,
           NULL::smallint AS matched, NULL AS divergence_reason, NULL::float8 AS slippage_pips,
           NULL AS close_reason, NULL::float8 AS closed_price, NULL::float8 AS pnl_gbp,
           NULL::float8 AS pnl_percent, NULL::integer AS duration_ms,
           c.cond AS guard_condition,
           CASE WHEN recent AND g = 0 THEN CASE WHEN u % 2 = 0 THEN 'critical' ELSE 'warning' END
                WHEN recent THEN CASE WHEN u % 2 = 0 THEN 'warning' ELSE 'normal' END
                ELSE (ARRAY['normal', 'warning', 'critical'])[1 + floor(3 * r2)::int] END AS guard_level,
           CASE WHEN c.cond = 'price_gap' THEN round((0.2 + 3 * r3)::numeric, 2)::float8 END AS price_gap_pct,
           NULL AS error_message,
           CASE WHEN recent AND g = 0 THEN now() - (120 + 120 * r3) * interval '1 second'
                WHEN recent THEN now() - (480 + 240 * r3) * interval '1 second'
                ELSE now() - interval '20 minutes'
                     - r3 * (interval '7 days' - interval '20 minutes') END AS created_at
    FROM grow
    CROSS JOIN LATERAL (SELECT (ARRAY['price_gap', 'bid_ask_spread', 'low_liquidity'])
                               [1 + floor(3 * r1)::int] AS cond) c
    JOIN sym ON sym.k = floor(6 * r2)::int)
SELECT id, user_id, signal_id, event_type, status, mt5_position_id, symbol, direction, volume,
       entry_price, current_price, take_profit, stop_loss, matched, divergence_reason,
       slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms,
       guard_condition, guard_level, price_gap_pct, error_message, created_at, created_at
FROM pos_rows
UNION ALL
SELECT id, user_id, signal_id, event_type, status, mt5_position_id, symbol, direction, volume,
       entry_price, current_price, take_profit, stop_loss, matched, divergence_reason,
       slippage_pips, close_reason, closed_price, pnl_gbp, pnl_percent, duration_ms,
       guard_condition, guard_level, price_gap_pct, error_message, created_at, created_at
FROM guard_rows;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el,
       (SELECT count(*) FROM position_state) AS positions,
       (SELECT count(*) FROM position_state WHERE is_open) AS open_positions \gset
\echo '[generate]   reconciliation_logs (' :positions 'positions,' :open_positions 'open)' :el 's'

INSERT INTO equity_snapshots (user_id, equity, peak_equity, recorded_at)
WITH usr AS (
    SELECT i AS u, ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid AS user_id,
           greatest(2, :rows_per_user / 10) AS n_snap,
           round((10000 + 90000 * pg_temp.rnd(i, 0, 40, :seed))::numeric, 2) AS base,
           6.2832 * pg_temp.rnd(i, 0, 41, :seed) AS phase,
           CASE WHEN i % 10 = 1 THEN 0.105 + 0.04 * pg_temp.rnd(i, 0, 42, :seed)
                WHEN i % 10 = 2 THEN 0.205 + 0.07 * pg_temp.rnd(i, 0, 42, :seed)
                ELSE 0.06 * pg_temp.rnd(i, 0, 42, :seed) END AS dd
    FROM generate_series(1, :users) AS i
    WHERE i % 50 <> 0),
raw AS (
    SELECT u, user_id, n_snap, j, dd,
           now() - interval '30 seconds' - (n_snap - 1 - j) * (interval '7 days' / n_snap) AS recorded_at,
           round((base::float8 * (1 + 0.06 * sin(0.15 * j + phase) + 0.05 * j / n_snap
                                  + 0.01 * (pg_temp.rnd(u, j, 43, :seed) - 0.5)))::numeric, 2) AS eq
    FROM usr CROSS JOIN LATERAL generate_series(0, n_snap - 1) AS j),
adj AS (
    SELECT user_id, j, recorded_at,
           CASE WHEN j < n_snap - 1 THEN eq
                ELSE round(max(eq) FILTER (WHERE j < n_snap - 1) OVER (PARTITION BY user_id)
                           * (1 - dd)::numeric, 2) END AS equity
    FROM raw)
SELECT user_id, equity::float8,
       (max(equity) OVER (PARTITION BY user_id ORDER BY j
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))::float8,
       recorded_at
FROM adj
ORDER BY user_id, j;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el \gset
\echo '[generate]   equity_snapshots' :el 's'

INSERT INTO demo_dataset (id, users, rows_per_user, seed, generated_at, load_seconds)
VALUES (true, :users, :rows_per_user, :seed, now(),
        round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1))
ON CONFLICT (id) DO UPDATE
    SET users = EXCLUDED.users, rows_per_user = EXCLUDED.rows_per_user, seed = EXCLUDED.seed,
        generated_at = EXCLUDED.generated_at, load_seconds = EXCLUDED.load_seconds;

COMMIT;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el \gset
\echo '[generate]   committed' :el 's'

-- Statistics and the visibility map (index-only counts) for the fresh rows.
VACUUM (ANALYZE) users, reconciliation_logs, equity_snapshots, position_state;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS el \gset
\echo '[generate]   vacuum analyze' :el 's'
\echo '[generate] done in' :el 's'
\endif

SELECT pg_advisory_unlock(hashtext('trading-api generate.sql')) \g /dev/null
