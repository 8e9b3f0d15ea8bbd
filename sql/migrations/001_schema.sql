-- The contract's tables (shared/API.md), with the CHECK constraints that keep rows consistent.
-- Idempotent: safe to run on a database that already has them.
-- gen_random_uuid() is built in from Postgres 13 on.

CREATE TABLE IF NOT EXISTS users (
    id         uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS instruments (
    symbol        varchar(20) PRIMARY KEY,
    contract_size double precision NOT NULL
);

INSERT INTO instruments (symbol, contract_size) VALUES
    ('XAUUSD', 100), ('XAGUSD', 5000), ('EURUSD', 100000), ('GBPUSD', 100000),
    ('USDJPY', 100000), ('BTCUSD', 1)
ON CONFLICT (symbol) DO NOTHING;

CREATE TABLE IF NOT EXISTS equity_snapshots (
    user_id     uuid NOT NULL REFERENCES users(id),
    equity      double precision NOT NULL,
    peak_equity double precision NOT NULL,
    recorded_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reconciliation_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users(id),
    signal_id         uuid,
    approval_id       uuid,
    event_type        varchar(50) NOT NULL,
    status            varchar(50) NOT NULL,
    mt5_position_id   bigint,
    symbol            varchar(20) NOT NULL,
    direction         varchar(10),
    volume            double precision,
    entry_price       double precision,
    current_price     double precision,
    take_profit       double precision,
    stop_loss         double precision,
    matched           smallint,
    divergence_reason varchar(100),
    slippage_pips     double precision,
    close_reason      varchar(100),
    closed_price      double precision,
    pnl_gbp           double precision,
    pnl_percent       double precision,
    duration_ms       integer,
    guard_condition   varchar(30),
    guard_level       varchar(10),
    price_gap_pct     double precision,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT reconciliation_logs_event_type_check
        CHECK (event_type IN ('sync', 'close', 'guard_trigger')),
    CONSTRAINT reconciliation_logs_status_check
        CHECK (status IN ('success', 'partial', 'failed')),
    CONSTRAINT reconciliation_logs_direction_check
        CHECK (direction IS NULL OR direction IN ('buy', 'sell')),
    CONSTRAINT reconciliation_logs_matched_check
        CHECK (matched IS NULL OR matched IN (0, 1, 2)),
    CONSTRAINT reconciliation_logs_guard_condition_check
        CHECK (guard_condition IS NULL OR guard_condition IN ('price_gap', 'bid_ask_spread', 'low_liquidity')),
    CONSTRAINT reconciliation_logs_guard_level_check
        CHECK (guard_level IS NULL OR guard_level IN ('normal', 'warning', 'critical')),
    -- sync/close rows describe a position and carry no guard fields.
    CONSTRAINT reconciliation_logs_position_row_check
        CHECK (event_type NOT IN ('sync', 'close') OR (
            mt5_position_id IS NOT NULL AND direction IS NOT NULL AND volume IS NOT NULL
            AND entry_price IS NOT NULL
            AND guard_condition IS NULL AND guard_level IS NULL AND price_gap_pct IS NULL)),
    -- guard rows describe a guard and carry no ticket.
    CONSTRAINT reconciliation_logs_guard_row_check
        CHECK (event_type <> 'guard_trigger' OR (
            guard_condition IS NOT NULL AND guard_level IS NOT NULL AND mt5_position_id IS NULL))
);
