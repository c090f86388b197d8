-- name: uptime
-- description: Health-check uptime per repository and environment in the window: the share of
--   health checks that succeeded (null when there were none), with the latest check.
-- params: start, end
SELECT
  repository,
  environment,
  SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END) AS checks,
  SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successful_checks,
  SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failed_checks,
  CAST(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS DOUBLE)
    / NULLIF(SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END), 0) AS uptime_ratio,
  MAX(timestamp) AS last_check
FROM events
WHERE event_type = 'health_check' AND timestamp >= $start AND timestamp < $end
GROUP BY repository, environment
ORDER BY repository, environment
