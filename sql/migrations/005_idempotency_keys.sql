-- Idempotency-Key for the write endpoints: the first answer to a (writer, key) is kept for 24 h
-- and replayed to a retry with the same request; the same key with another request is 409.
-- `writer` is the writing token's `sub`. Written in the same transaction as the rows.

CREATE TABLE IF NOT EXISTS idempotency_keys (
    writer         uuid        NOT NULL,
    key            text        NOT NULL,
    request_sha256 text        NOT NULL,   -- of the method, path and body
    response       text        NOT NULL,   -- the 201 body
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (writer, key)
);

CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);
