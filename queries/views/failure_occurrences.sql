-- name: failure_occurrences
-- description: Every failure with a fingerprint, numbered within its fingerprint in time order
--   (occurrence 1 is the first time the failure was seen, in any repository; later ones are
--   repeats), with when the fingerprint was first seen and whether a fix had been written for
--   it before this failure. The one definition of a repeat failure.
-- params: none
SELECT
  event_id,
  timestamp,
  repository,
  environment,
  event_type,
  errors[1] AS error,
  notes,
  error_fingerprint,
  error_template,
  resolution_time_seconds,
  ROW_NUMBER() OVER (PARTITION BY error_fingerprint ORDER BY timestamp, event_id) AS occurrence,
  MIN(timestamp) OVER (PARTITION BY error_fingerprint) AS first_seen,
  COALESCE(MAX(CASE WHEN notes IS NOT NULL AND notes <> '' THEN 1 ELSE 0 END) OVER (
    PARTITION BY error_fingerprint ORDER BY timestamp, event_id
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
  ), 0) = 1 AS fix_known_before
FROM events
WHERE status = 'failure' AND error_fingerprint IS NOT NULL
