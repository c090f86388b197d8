-- name: duration_histogram
-- description: Completed deployments with a duration per repository, environment and duration
--   bucket (upper bounds from 10 seconds to 4 hours; +Inf above), with the bucket's count and
--   sum of durations, over all history. Cumulated, these are the
--   deploylens_deployment_duration_seconds histogram.
-- params: none
SELECT
  repository,
  environment,
  CASE
    WHEN duration_seconds <= 10 THEN 10.0
    WHEN duration_seconds <= 30 THEN 30.0
    WHEN duration_seconds <= 60 THEN 60.0
    WHEN duration_seconds <= 120 THEN 120.0
    WHEN duration_seconds <= 300 THEN 300.0
    WHEN duration_seconds <= 600 THEN 600.0
    WHEN duration_seconds <= 900 THEN 900.0
    WHEN duration_seconds <= 1800 THEN 1800.0
    WHEN duration_seconds <= 3600 THEN 3600.0
    WHEN duration_seconds <= 7200 THEN 7200.0
    WHEN duration_seconds <= 14400 THEN 14400.0
    ELSE CAST('inf' AS DOUBLE)
  END AS le,
  COUNT(*) AS deployments,
  SUM(duration_seconds) AS sum_seconds
FROM deployments
WHERE status IN ('success', 'failure') AND duration_seconds IS NOT NULL
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
