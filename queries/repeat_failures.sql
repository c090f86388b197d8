-- name: repeat_failures
-- description: Failures in the window whose fingerprint had been seen before, in any
--   repository: when it was first seen, how often and in how many repositories it happened,
--   whether a fix was known before this failure (an earlier failure of the fingerprint with
--   notes), and the fingerprint's median resolution time.
-- params: start, end
WITH failures AS (
  SELECT
    event_id, timestamp, repository, environment, event_type, errors[1] AS error, notes,
    error_fingerprint, error_template,
    ROW_NUMBER() OVER (PARTITION BY error_fingerprint ORDER BY timestamp, event_id) AS nth,
    MIN(timestamp) OVER (PARTITION BY error_fingerprint) AS first_seen,
    COALESCE(MAX(CASE WHEN notes IS NOT NULL AND notes <> '' THEN 1 ELSE 0 END) OVER (
      PARTITION BY error_fingerprint ORDER BY timestamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ), 0) AS fix_known_before
  FROM events
  WHERE status = 'failure' AND error_fingerprint IS NOT NULL
),
per_fingerprint AS (
  SELECT
    error_fingerprint,
    COUNT(*) AS occurrences,
    COUNT(DISTINCT repository) AS repositories,
    median(resolution_time_seconds) AS median_resolution_seconds
  FROM events
  WHERE status = 'failure' AND error_fingerprint IS NOT NULL
  GROUP BY error_fingerprint
)
SELECT
  f.timestamp,
  f.repository,
  f.environment,
  f.event_type,
  f.error,
  f.error_fingerprint,
  f.error_template,
  f.first_seen,
  f.nth AS occurrence,
  p.occurrences,
  p.repositories,
  f.fix_known_before = 1 AS fix_known,
  p.median_resolution_seconds
FROM failures f
JOIN per_fingerprint p ON p.error_fingerprint = f.error_fingerprint
WHERE f.nth > 1 AND f.timestamp >= $start AND f.timestamp < $end
ORDER BY f.timestamp DESC
