-- name: deployment_attempts
-- description: One row per deployment attempt (a row of `deployments`) with its place among the
--   attempts of the same deployment (repository, environment, and trace_id, or version when
--   there is no trace_id): `attempt` counts from 1, `attempts` is how many there were,
--   `final_status` is the outcome of the last one, `first_attempt_at` the time of the first and
--   `failed_attempts` how many failed. `rolled_back` is true when the next deployment event of
--   that repository and environment, after this attempt, is a successful rollback
--   (`rolled_back_at` its time); a failed rollback is passed over, as in `restores`.
-- params: none
WITH sequence AS (
  SELECT deployment_id, timestamp, repository, environment, version, trace_id, status, 'deployment' AS kind
  FROM deployments
  UNION ALL
  SELECT event_id AS deployment_id, timestamp, repository, environment, version, trace_id, status, 'rollback' AS kind
  FROM events
  WHERE event_type = 'rollback' AND status = 'success'
),
following AS (
  SELECT *,
    LEAD(kind) OVER next_event AS next_kind,
    LEAD(timestamp) OVER next_event AS next_at
  FROM sequence
  WINDOW next_event AS (PARTITION BY repository, environment ORDER BY timestamp, kind)
),
numbered AS (
  -- Windows partitioned by the deployment itself would make one tiny partition per deployment,
  -- which DataFusion evaluates slowly: attempts are numbered within the repository and
  -- environment, ordered by deployment, and the deployment's figures come from a GROUP BY.
  SELECT *,
    COALESCE(trace_id, version) AS attempt_key,
    ROW_NUMBER() OVER (
      PARTITION BY repository, environment
      ORDER BY COALESCE(trace_id, version), timestamp, deployment_id
    ) AS rn
  FROM following
  WHERE kind = 'deployment'
),
per_deployment AS (
  SELECT repository, environment, attempt_key,
    MIN(rn) AS first_rn,
    COUNT(*) AS attempts,
    arg_max(status, rn) AS final_status,
    MIN(timestamp) AS first_attempt_at,
    SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failed_attempts
  FROM numbered
  GROUP BY repository, environment, attempt_key
)
SELECT
  n.deployment_id,
  n.timestamp,
  n.repository,
  n.environment,
  n.version,
  n.trace_id,
  n.status,
  CAST(n.rn - p.first_rn AS BIGINT) + 1 AS attempt,
  p.attempts,
  p.final_status,
  CASE WHEN n.next_kind = 'rollback' THEN true ELSE false END AS rolled_back,
  CASE WHEN n.next_kind = 'rollback' THEN n.next_at END AS rolled_back_at,
  p.first_attempt_at,
  p.failed_attempts
FROM numbered AS n
JOIN per_deployment AS p
  ON p.repository = n.repository AND p.environment = n.environment AND p.attempt_key = n.attempt_key
