-- name: duration_percentiles
-- description: Exact p50, p95 and p99 (linear interpolation) of the duration of completed
--   deployments, successful or failed, per repository and environment in the window; with the
--   mean and the longest. Deployments without a duration (legacy records) are left out.
-- params: start, end
SELECT
  repository,
  environment,
  COUNT(duration_seconds) AS deployments,
  percentile_cont(0.50) WITHIN GROUP (ORDER BY duration_seconds) AS p50_seconds,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95_seconds,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_seconds) AS p99_seconds,
  AVG(duration_seconds) AS mean_seconds,
  MAX(duration_seconds) AS max_seconds
FROM deployments
WHERE status IN ('success', 'failure')
  AND duration_seconds IS NOT NULL
  AND timestamp >= $start AND timestamp < $end
GROUP BY repository, environment
ORDER BY repository, environment
