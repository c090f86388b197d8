-- name: environment_summary
-- description: Per environment in the window: repositories deploying, completed deployments,
--   success ratio, exact p50, p95 and p99 duration, and the latest deployment.
-- params: start, end
SELECT
  environment,
  COUNT(DISTINCT repository) AS repositories,
  COUNT(*) AS deployments,
  SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes,
  SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failures,
  CAST(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(COUNT(*), 0) AS success_ratio,
  percentile_cont(0.50) WITHIN GROUP (ORDER BY duration_seconds) AS p50_seconds,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95_seconds,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_seconds) AS p99_seconds,
  MAX(timestamp) AS last_deployment
FROM deployments
WHERE status IN ('success', 'failure') AND timestamp >= $start AND timestamp < $end
GROUP BY environment
ORDER BY environment
