-- name: dora
-- description: The DORA figures the events allow, per repository, for production only:
--   deployment frequency (successful production deployments per day, days without deployments
--   counting as zero), change failure rate (failed production deployments, plus successful ones
--   undone by a rollback before the next deployment, over all production deployments), and
--   failed-deployment recovery time (median time to restore of production failure streaks that
--   began in the window); each with its band from the 2023 State of DevOps report (elite, high,
--   medium, low). Rates with no deployments behind them are null, not 0.
-- params: start, end, window_days
WITH prod AS (
  SELECT repository, timestamp, status, 'deployment' AS kind
  FROM deployments
  WHERE environment = 'production' AND status IN ('success', 'failure')
),
changes AS (
  SELECT *, LEAD(kind) OVER (PARTITION BY repository ORDER BY timestamp) AS next_kind
  FROM (
    SELECT * FROM prod
    UNION ALL
    SELECT repository, timestamp, status, 'rollback' AS kind
    FROM events
    WHERE event_type = 'rollback' AND environment = 'production'
  ) AS c
),
windowed AS (
  SELECT
    repository,
    COUNT(*) AS deployments,
    SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successful_deployments,
    SUM(CASE WHEN status = 'failure' OR next_kind = 'rollback' THEN 1 ELSE 0 END) AS failed_changes
  FROM changes
  WHERE kind = 'deployment' AND timestamp >= $start AND timestamp < $end
  GROUP BY repository
),
repositories AS (
  SELECT DISTINCT repository FROM prod
),
recovery AS (
  SELECT repository,
         COUNT(restore_seconds) AS restores,
         percentile_cont(0.50) WITHIN GROUP (ORDER BY restore_seconds) AS recovery_median_seconds
  FROM restores
  WHERE environment = 'production' AND failed_at >= $start AND failed_at < $end
  GROUP BY repository
),
figures AS (
  SELECT
    r.repository,
    COALESCE(w.deployments, 0) AS deployments,
    COALESCE(w.successful_deployments, 0) AS successful_deployments,
    COALESCE(w.successful_deployments, 0) / $window_days AS deployments_per_day,
    COALESCE(w.failed_changes, 0) AS failed_changes,
    CAST(w.failed_changes AS DOUBLE) / NULLIF(w.deployments, 0) AS change_failure_rate,
    COALESCE(v.restores, 0) AS restores,
    v.recovery_median_seconds
  FROM repositories r
  LEFT JOIN windowed w ON w.repository = r.repository
  LEFT JOIN recovery v ON v.repository = r.repository
)
SELECT
  repository,
  deployments,
  successful_deployments,
  deployments_per_day,
  CASE
    WHEN deployments_per_day >= 1 THEN 'elite'
    WHEN deployments_per_day >= 1.0 / 7 THEN 'high'
    WHEN deployments_per_day >= 1.0 / 30 THEN 'medium'
    ELSE 'low'
  END AS deployment_frequency_band,
  failed_changes,
  change_failure_rate,
  CASE
    WHEN change_failure_rate IS NULL THEN NULL
    WHEN change_failure_rate <= 0.05 THEN 'elite'
    WHEN change_failure_rate <= 0.10 THEN 'high'
    WHEN change_failure_rate <= 0.15 THEN 'medium'
    ELSE 'low'
  END AS change_failure_band,
  restores,
  recovery_median_seconds,
  CASE
    WHEN recovery_median_seconds IS NULL THEN NULL
    WHEN recovery_median_seconds < 3600 THEN 'elite'
    WHEN recovery_median_seconds < 86400 THEN 'high'
    WHEN recovery_median_seconds < 604800 THEN 'medium'
    ELSE 'low'
  END AS recovery_band
FROM figures
ORDER BY repository
