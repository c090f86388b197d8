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
  services,
  metadata,
  extra,
  event_type,
  repository_source,
  source_file,
  source_line,
  source_offset,
  ingested_at
FROM (
  -- Neighbours within one attempt. Partitioning by the attempt key itself would make one tiny
  -- window partition per deployment, which DataFusion evaluates slowly; ordering by the key
  -- inside the repository and environment puts the same records side by side instead.
  SELECT
    *,
    CASE WHEN LAG(attempt_key) OVER attempt = attempt_key THEN LAG(status) OVER attempt END AS prev_status,
    CASE WHEN LAG(attempt_key) OVER attempt = attempt_key THEN LAG(timestamp) OVER attempt END AS prev_timestamp,
    CASE WHEN LEAD(attempt_key) OVER attempt = attempt_key THEN LEAD(status) OVER attempt END AS next_status
  FROM (
    SELECT *, COALESCE(trace_id, version, '') AS attempt_key
    FROM events
    WHERE event_type = 'deployment'
  ) AS records
  WINDOW attempt AS (
    PARTITION BY repository, environment
    ORDER BY attempt_key, timestamp, CASE status WHEN 'in_progress' THEN 0 ELSE 1 END
  )
) AS records
WHERE status <> 'in_progress' OR next_status IS NULL
