-- name: failed_deployments
-- description: Failed deployments in the window, newest first, with the error, its fingerprint,
--   the fix someone wrote down (notes), the reported resolution time, and where the event was
--   read (file, line, event id).
-- params: start, end
SELECT
  timestamp,
  repository,
  environment,
  version,
  trace_id,
  errors[1] AS error,
  errors,
  notes AS fix,
  resolution_time_seconds,
  error_fingerprint,
  error_template,
  deployed_by,
  duration_seconds,
  source_file,
  source_line,
  deployment_id AS event_id
FROM deployments
WHERE status = 'failure' AND timestamp >= $start AND timestamp < $end
ORDER BY timestamp DESC, repository, environment
