-- name: deployments
-- description: One row per deployment attempt. Records of one deployment (in_progress, then
--   success or failure, with the same repository, environment and trace_id, or version when
--   there is no trace_id) are one deployment with its last outcome; an in_progress record
--   with no outcome yet is a deployment in progress. A redeploy of the same version after an
--   outcome is a new attempt.
-- params: none
SELECT
  event_id AS deployment_id,
  timestamp,
  CASE WHEN prev_status = 'in_progress' THEN prev_timestamp END AS started_at,
  repository,
  environment,
  version,
  trace_id,
  status,
  duration_seconds,
  errors,
  notes,
  deployed_by,
  resolution_time_seconds,
  error_fingerprint,
  error_template,
  repository_source,
  source_file,
  source_line
FROM (
  SELECT
    *,
    LAG(status) OVER attempt AS prev_status,
    LAG(timestamp) OVER attempt AS prev_timestamp,
    LEAD(status) OVER attempt AS next_status
  FROM events
  WHERE event_type = 'deployment'
  WINDOW attempt AS (
    PARTITION BY repository, environment, COALESCE(trace_id, version)
    ORDER BY timestamp, CASE status WHEN 'in_progress' THEN 0 ELSE 1 END
  )
) AS records
WHERE status <> 'in_progress' OR next_status IS NULL
