-- name: repeat_ratio
-- description: Per repository in the window: failures with a fingerprint, how many repeated a
--   fingerprint seen before (in any repository), the repeat ratio (null without failures), and
--   how many of the repeats had a fix known before them.
-- params: start, end
WITH failures AS (
  SELECT
    timestamp, repository, error_fingerprint,
    ROW_NUMBER() OVER (PARTITION BY error_fingerprint ORDER BY timestamp, event_id) AS nth,
    COALESCE(MAX(CASE WHEN notes IS NOT NULL AND notes <> '' THEN 1 ELSE 0 END) OVER (
      PARTITION BY error_fingerprint ORDER BY timestamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ), 0) AS fix_known_before
  FROM events
  WHERE status = 'failure' AND error_fingerprint IS NOT NULL
)
SELECT
  repository,
  COUNT(*) AS failures,
  SUM(CASE WHEN nth > 1 THEN 1 ELSE 0 END) AS repeats,
  CAST(SUM(CASE WHEN nth > 1 THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(COUNT(*), 0) AS repeat_ratio,
  SUM(CASE WHEN nth > 1 AND fix_known_before = 1 THEN 1 ELSE 0 END) AS repeats_with_known_fix
FROM failures
WHERE timestamp >= $start AND timestamp < $end
GROUP BY repository
ORDER BY repository
