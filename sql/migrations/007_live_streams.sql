-- The live stream's open channels (docs/design/live-stream.md): one row per token that opened a
-- stream, written by the worker that redirected it, so that the supervisor ends every stream at
-- its token's exp even after a restart. The supervisor deletes a row when it deletes the channel.
CREATE TABLE IF NOT EXISTS live_streams (
    channel    text PRIMARY KEY CHECK (channel ~ '^t\.[0-9a-f]{32}$'),
    user_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS live_streams_expires_at ON live_streams (expires_at);
