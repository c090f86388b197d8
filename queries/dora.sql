-- name: dora
-- description: DORA's five figures per repository and environment (production is DORA's own;
--   the other environments get the same definitions). A deployment is counted once: its
--   attempts (in_progress records, retries of the same trace_id or version) are one deployment
--   with the outcome of its last attempt. Deployment frequency: successful deployments per day,
--   days without any counting as zero. Change lead time: median and p95 from the commit to its
--   successful deployment, where events carry `commit_timestamp` (top level or in metadata).
--   Change failure rate: deployments with a failed attempt (retried or not) or that a successful
--   rollback undid, over all deployments; it cannot exceed 1. Failed-deployment recovery time: median time to restore of
--   the failure streaks begun in the window (the `restores` view). Deployment rework rate:
--   unplanned deployments (successful rollbacks, and deployments begun while the environment
--   was failing) over all deployments and rollbacks. Bands are those of the 2023 State of
--   DevOps report (rework rate has none). A rate with nothing behind it is null, not 0.
-- params: start, end, window_days
WITH completed AS (
  -- One row per deployment, at its last attempt.
  SELECT deployment_id, repository, environment, timestamp, first_attempt_at, final_status, failed_attempts, rolled_back
  FROM deployment_attempts
  WHERE attempt = attempts AND final_status IN ('success', 'failure')
),
in_window AS (
  SELECT * FROM completed WHERE timestamp >= $start AND timestamp < $end
),
rollbacks AS (
  SELECT repository, environment, COUNT(*) AS rollbacks
  FROM events
  WHERE event_type = 'rollback' AND status = 'success' AND timestamp >= $start AND timestamp < $end
  GROUP BY repository, environment
),
probes AS (
  -- Each deployment's first attempt among the outcomes of `restores` (deployments, successful
  -- rollbacks); at the same instant the probe comes first, so that only earlier outcomes count.
  SELECT repository, environment, first_attempt_at AS event_time, 0 AS probe_first, CAST(NULL AS VARCHAR) AS status
  FROM in_window
  UNION ALL
  SELECT repository, environment, timestamp AS event_time, 1 AS probe_first, status
  FROM deployments
  WHERE status IN ('success', 'failure')
  UNION ALL
  SELECT repository, environment, timestamp AS event_time, 1 AS probe_first, 'success' AS status
  FROM events
  WHERE event_type = 'rollback' AND status = 'success'
),
states AS (
  SELECT repository, environment, probe_first,
    MAX(CASE WHEN status = 'failure' THEN event_time END) OVER before AS last_failure,
    MAX(CASE WHEN status = 'success' THEN event_time END) OVER before AS last_success
  FROM probes
  WINDOW before AS (
    PARTITION BY repository, environment ORDER BY event_time, probe_first
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
  )
),
hotfixes AS (
  -- Deployments whose first attempt began while a failure streak was open: the last outcome
  -- before it was a failure.
  SELECT repository, environment, COUNT(*) AS hotfixes
  FROM states
  WHERE probe_first = 0 AND last_failure IS NOT NULL AND (last_success IS NULL OR last_failure > last_success)
  GROUP BY repository, environment
),
counted AS (
  SELECT
    repository,
    environment,
    COUNT(*) AS deployments,
    SUM(CASE WHEN final_status = 'success' THEN 1 ELSE 0 END) AS successful_deployments,
    SUM(CASE WHEN failed_attempts > 0 OR rolled_back THEN 1 ELSE 0 END) AS failed_changes
  FROM in_window
  GROUP BY repository, environment
),
lead_times AS (
  SELECT d.repository, d.environment,
    epoch(d.timestamp - TRY_CAST(COALESCE(e.extra ->> 'commit_timestamp', e.metadata ->> 'commit_timestamp') AS TIMESTAMP WITH TIME ZONE)) AS lead_seconds
  FROM in_window AS d
  JOIN events AS e ON e.event_id = d.deployment_id
  WHERE d.final_status = 'success' AND e.event_type = 'deployment' AND e.status = 'success'
),
lead AS (
  SELECT repository, environment,
    COUNT(*) AS changes_with_commit_time,
    percentile_cont(0.50) WITHIN GROUP (ORDER BY lead_seconds) AS lead_time_median_seconds,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY lead_seconds) AS lead_time_p95_seconds
  FROM lead_times
  -- A commit after its deployment is a clock's error, not a lead time.
  WHERE lead_seconds >= 0
  GROUP BY repository, environment
),
pairs AS (
  SELECT DISTINCT repository, environment FROM completed
),
recovery AS (
  SELECT repository, environment,
         COUNT(restore_seconds) AS restores,
         percentile_cont(0.50) WITHIN GROUP (ORDER BY restore_seconds) AS recovery_median_seconds
  FROM restores
  WHERE failed_at >= $start AND failed_at < $end
  GROUP BY repository, environment
),
figures AS (
  SELECT
    p.repository,
    p.environment,
    COALESCE(c.deployments, 0) AS deployments,
    COALESCE(c.successful_deployments, 0) AS successful_deployments,
    COALESCE(c.successful_deployments, 0) / NULLIF($window_days, 0) AS deployments_per_day,
    COALESCE(l.changes_with_commit_time, 0) AS changes_with_commit_time,
    l.lead_time_median_seconds,
    l.lead_time_p95_seconds,
    COALESCE(c.failed_changes, 0) AS failed_changes,
    CAST(c.failed_changes AS DOUBLE) / NULLIF(c.deployments, 0) AS change_failure_rate,
    COALESCE(v.restores, 0) AS restores,
    v.recovery_median_seconds,
    COALESCE(h.hotfixes, 0) + COALESCE(b.rollbacks, 0) AS rework_deployments,
    CAST(COALESCE(h.hotfixes, 0) + COALESCE(b.rollbacks, 0) AS DOUBLE)
      / NULLIF(COALESCE(c.deployments, 0) + COALESCE(b.rollbacks, 0), 0) AS rework_rate
  FROM pairs AS p
  LEFT JOIN counted AS c ON c.repository = p.repository AND c.environment = p.environment
  LEFT JOIN lead AS l ON l.repository = p.repository AND l.environment = p.environment
  LEFT JOIN recovery AS v ON v.repository = p.repository AND v.environment = p.environment
  LEFT JOIN hotfixes AS h ON h.repository = p.repository AND h.environment = p.environment
  LEFT JOIN rollbacks AS b ON b.repository = p.repository AND b.environment = p.environment
)
SELECT
  repository,
  environment,
  deployments,
  successful_deployments,
  deployments_per_day,
  CASE
    WHEN deployments_per_day IS NULL THEN NULL
    WHEN deployments_per_day >= 1 THEN 'elite'
    WHEN deployments_per_day >= 1.0 / 7 THEN 'high'
    WHEN deployments_per_day >= 1.0 / 30 THEN 'medium'
    ELSE 'low'
  END AS deployment_frequency_band,
  changes_with_commit_time,
  lead_time_median_seconds,
  lead_time_p95_seconds,
  CASE
    WHEN lead_time_median_seconds IS NULL THEN NULL
    WHEN lead_time_median_seconds < 86400 THEN 'elite'
    WHEN lead_time_median_seconds < 604800 THEN 'high'
    WHEN lead_time_median_seconds < 2592000 THEN 'medium'
    ELSE 'low'
  END AS lead_time_band,
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
  END AS recovery_band,
  rework_deployments,
  rework_rate,
  'DORA 2023' AS bands_from
FROM figures
ORDER BY repository, CASE environment WHEN 'production' THEN 0 WHEN 'staging' THEN 1 ELSE 2 END, environment
