-- name: success_rate
-- description: Completed deployments, successes, failures, success and failure ratios per
--   repository and environment in the window. Ratios are null when nothing completed;
--   deployments still in progress are counted apart.
-- params: start, end
SELECT
  repository,
  environment,
  SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END) AS deployments,
  SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes,
  SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failures,
  SUM(CASE WHEN status = 'in_progress' THEN 1 ELSE 0 END) AS in_progress,
  CAST(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS DOUBLE)
    / NULLIF(SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END), 0) AS success_ratio,
  CAST(SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS DOUBLE)
    / NULLIF(SUM(CASE WHEN status IN ('success', 'failure') THEN 1 ELSE 0 END), 0) AS failure_ratio
FROM deployments
WHERE timestamp >= $start AND timestamp < $end
GROUP BY repository, environment
ORDER BY repository, environment
