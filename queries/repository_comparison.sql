-- name: repository_comparison
-- description: Repositories side by side over the window, all environments together: completed
--   deployments and deployments per day, success ratio, exact p50 and p95 duration, median time
--   to restore, health-check uptime, and the latest deployment with its outcome.
-- params: start, end, window_days
WITH d AS (
  SELECT * FROM deployments
  WHERE status IN ('success', 'failure') AND timestamp >= $start AND timestamp < $end
),
deploys AS (
  SELECT
    repository,
    COUNT(*) AS deployments,
    COUNT(*) / NULLIF($window_days, 0) AS deployments_per_day,
    CAST(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(COUNT(*), 0) AS success_ratio,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY duration_seconds) AS p50_seconds,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95_seconds,
    MAX(timestamp) AS last_deployment
  FROM d
  GROUP BY repository
),
last_outcome AS (
  SELECT repository, status AS last_status
  FROM (SELECT repository, status, ROW_NUMBER() OVER (PARTITION BY repository ORDER BY timestamp DESC) AS n FROM d) AS x
  WHERE n = 1
),
restore AS (
  SELECT repository, percentile_cont(0.50) WITHIN GROUP (ORDER BY restore_seconds) AS median_restore_seconds
  FROM restores
  WHERE failed_at >= $start AND failed_at < $end
  GROUP BY repository
),
health AS (
  SELECT repository,
         CAST(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS DOUBLE)
           / NULLIF(SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END), 0) AS uptime_ratio
  FROM events
  WHERE event_type = 'health_check' AND timestamp >= $start AND timestamp < $end
  GROUP BY repository
)
SELECT
  p.repository,
  p.deployments,
  p.deployments_per_day,
  p.success_ratio,
  p.p50_seconds,
  p.p95_seconds,
  r.median_restore_seconds,
  h.uptime_ratio,
  p.last_deployment,
  l.last_status
FROM deploys p
LEFT JOIN last_outcome l ON l.repository = p.repository
LEFT JOIN restore r ON r.repository = p.repository
LEFT JOIN health h ON h.repository = p.repository
ORDER BY p.repository
