-- The ids of the last messages the supervisor published to each live stream channel (nchan's
-- `<time>:<tag>`, oldest first, at most the channel's buffer of 32), so that a worker can tell a
-- reconnecting client's Last-Event-ID that nchan still holds from one it does not
-- (docs/design/live-stream.md, "Resume").
ALTER TABLE live_streams ADD COLUMN IF NOT EXISTS recent_ids text[] NOT NULL DEFAULT '{}';
