-- name: restores
-- description: One row per failure streak: consecutive failed deployments of a repository in an
--   environment, from the first failure to the next successful deployment or successful rollback
--   (restored_at and restore_seconds are null while the streak is open). A failed rollback
--   neither starts nor ends a streak. reported_resolution_seconds is the largest
--   resolution_time_seconds written on the streak's failures.
-- params: none
WITH outcomes AS (
  SELECT repository, environment, timestamp, status, 'deployment' AS kind,
         resolution_time_seconds, error_fingerprint
  FROM deployments
  WHERE status IN ('success', 'failure')
  UNION ALL
  SELECT repository, environment, timestamp, 'success' AS status, 'rollback' AS kind,
         CAST(NULL AS DOUBLE) AS resolution_time_seconds, CAST(NULL AS VARCHAR) AS error_fingerprint
  FROM events
  WHERE event_type = 'rollback' AND status = 'success'
),
numbered AS (
  SELECT *,
    SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) OVER (
      PARTITION BY repository, environment
      ORDER BY timestamp, CASE WHEN status = 'failure' THEN 0 ELSE 1 END
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS streak
  FROM outcomes
),
streaks AS (
  SELECT repository, environment, streak,
         MIN(timestamp) AS failed_at,
         COUNT(*) AS failures,
         MAX(resolution_time_seconds) AS reported_resolution_seconds
  FROM numbered
  WHERE status = 'failure'
  GROUP BY repository, environment, streak
),
restorers AS (
  SELECT repository, environment, streak - 1 AS streak, timestamp AS restored_at, kind AS restored_by
  FROM numbered
  WHERE status = 'success'
)
SELECT
  s.repository,
  s.environment,
  s.failed_at,
  r.restored_at,
  r.restored_by,
  s.failures,
  (CAST(r.restored_at AS BIGINT) - CAST(s.failed_at AS BIGINT)) / 1000000.0 AS restore_seconds,
  s.reported_resolution_seconds
FROM streaks s
LEFT JOIN restorers r
  ON s.repository = r.repository AND s.environment = r.environment AND s.streak = r.streak
