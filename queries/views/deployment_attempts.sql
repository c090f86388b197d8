-- name: deployment_attempts
-- description: One row per deployment attempt (a row of `deployments`) with its place among the
--   attempts of the same deployment (repository, environment, and trace_id, or version when
--   there is no trace_id): `attempt` counts from 1, `attempts` is how many there were, and
--   `final_status` is the outcome of the last one. `rolled_back` is true when the next
--   deployment event of that repository and environment, after this attempt, is a successful
--   rollback (`rolled_back_at` its time); a failed rollback is passed over, as in `restores`.
-- params: none
WITH sequence AS (
  SELECT deployment_id AS id, repository, environment, timestamp, 'deployment' AS kind
  FROM deployments
  UNION ALL
  SELECT event_id AS id, repository, environment, timestamp, 'rollback' AS kind
  FROM events
  WHERE event_type = 'rollback' AND status = 'success'
),
following AS (
  SELECT id, kind,
    LEAD(kind) OVER next_event AS next_kind,
    LEAD(timestamp) OVER next_event AS next_at
  FROM sequence
  WINDOW next_event AS (PARTITION BY repository, environment ORDER BY timestamp, kind)
)
SELECT
  d.deployment_id,
  d.timestamp,
  d.repository,
  d.environment,
  d.version,
  d.trace_id,
  d.status,
  ROW_NUMBER() OVER same_deployment AS attempt,
  COUNT(*) OVER whole_deployment AS attempts,
  LAST_VALUE(d.status) OVER whole_deployment AS final_status,
  CASE WHEN f.next_kind = 'rollback' THEN true ELSE false END AS rolled_back,
  CASE WHEN f.next_kind = 'rollback' THEN f.next_at END AS rolled_back_at
FROM deployments AS d
JOIN following AS f ON f.id = d.deployment_id AND f.kind = 'deployment'
WINDOW
  same_deployment AS (PARTITION BY d.repository, d.environment, COALESCE(d.trace_id, d.version) ORDER BY d.timestamp, d.deployment_id),
  whole_deployment AS (PARTITION BY d.repository, d.environment, COALESCE(d.trace_id, d.version) ORDER BY d.timestamp, d.deployment_id
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
