-- name: knowledge
-- description: One row per error fingerprint over all history: its template, how often and
--   where it happened, example errors, the distinct fixes written down, and the median
--   resolution time. The source of `deploylens knowledge export`.
-- params: none
SELECT
  error_fingerprint AS fingerprint,
  MIN(error_template) AS template,
  COUNT(*) AS occurrences,
  array_sort(array_agg(DISTINCT repository)) AS repositories,
  array_slice(array_sort(array_agg(DISTINCT errors[1])), 1, 3) AS example_errors,
  array_sort(array_agg(DISTINCT notes) FILTER (WHERE notes IS NOT NULL AND notes <> '')) AS fixes,
  median(resolution_time_seconds) AS median_resolution_seconds,
  MIN(timestamp) AS first_seen,
  MAX(timestamp) AS last_seen
FROM events
WHERE error_fingerprint IS NOT NULL
GROUP BY error_fingerprint
ORDER BY occurrences DESC, fingerprint
