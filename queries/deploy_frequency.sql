-- name: deploy_frequency
-- description: Completed deployments per repository per UTC day in the window, every day listed:
--   a day without deployments is a row with 0, not a missing row.
-- params: start, end
WITH days AS (
  SELECT day
  FROM unnest(range(date_trunc('day', $start), $end, INTERVAL '1 day')) AS t(day)
),
repositories AS (
  SELECT DISTINCT repository FROM deployments
),
counts AS (
  SELECT
    repository,
    date_trunc('day', timestamp) AS day,
    COUNT(*) AS deployments,
    SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes,
    SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failures
  FROM deployments
  WHERE status IN ('success', 'failure') AND timestamp >= $start AND timestamp < $end
  GROUP BY repository, date_trunc('day', timestamp)
)
SELECT
  r.repository,
  d.day,
  COALESCE(c.deployments, 0) AS deployments,
  COALESCE(c.successes, 0) AS successes,
  COALESCE(c.failures, 0) AS failures
FROM repositories r
CROSS JOIN days d
LEFT JOIN counts c ON c.repository = r.repository AND c.day = d.day
ORDER BY r.repository, d.day
