-- name: knowledge
-- description: One row per error fingerprint over all history: its template, how often and
--   where it happened, example errors, the distinct fixes written down, the median
--   resolution time, and the file, line and event id of its latest occurrence. The source
--   of `deploylens knowledge export`.
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
  MAX(timestamp) AS last_seen,
  (array_agg(source_file ORDER BY timestamp DESC, source_file DESC, source_line DESC))[1] AS source_file,
  (array_agg(source_line ORDER BY timestamp DESC, source_file DESC, source_line DESC))[1] AS source_line,
  (array_agg(event_id ORDER BY timestamp DESC, source_file DESC, source_line DESC))[1] AS event_id
FROM events
WHERE error_fingerprint IS NOT NULL
GROUP BY error_fingerprint
ORDER BY occurrences DESC, fingerprint
