-- name: repeat_failures
-- description: Failures in the window whose fingerprint had been seen before, in any
--   repository: when it was first seen, how often and in how many repositories it happened,
--   whether a fix was known before this failure (an earlier failure of the fingerprint with
--   notes), and the fingerprint's median resolution time.
-- params: start, end
WITH per_fingerprint AS (
  SELECT
    error_fingerprint,
    COUNT(*) AS occurrences,
    COUNT(DISTINCT repository) AS repositories,
    median(resolution_time_seconds) AS median_resolution_seconds
  FROM failure_occurrences
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
  f.occurrence,
  p.occurrences,
  p.repositories,
  f.fix_known_before AS fix_known,
  p.median_resolution_seconds
FROM failure_occurrences f
JOIN per_fingerprint p ON p.error_fingerprint = f.error_fingerprint
WHERE f.occurrence > 1 AND f.timestamp >= $start AND f.timestamp < $end
ORDER BY f.timestamp DESC
