-- name: past_failures
-- description: Every failure with an error message, over all history: the corpus that
--   `deploylens fixes` searches. One row per failed event (deployments, health checks,
--   rollbacks...), with its fingerprint, template, the fix written in its notes, its
--   resolution time and where it was read (file, line, event id).
-- params: none
SELECT
  timestamp,
  repository,
  environment,
  event_type,
  version,
  error_fingerprint,
  error_template,
  array_to_string(errors, ' | ') AS error,
  notes AS fix,
  resolution_time_seconds,
  source_file,
  source_line,
  event_id
FROM events
WHERE error_fingerprint IS NOT NULL
ORDER BY timestamp
