-- name: repeat_ratio
-- description: Per repository in the window: failures with a fingerprint, how many repeated a
--   fingerprint seen before (in any repository), the repeat ratio (null without failures), and
--   how many of the repeats had a fix known before them.
-- params: start, end
SELECT
  repository,
  COUNT(*) AS failures,
  SUM(CASE WHEN occurrence > 1 THEN 1 ELSE 0 END) AS repeats,
  CAST(SUM(CASE WHEN occurrence > 1 THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(COUNT(*), 0) AS repeat_ratio,
  SUM(CASE WHEN occurrence > 1 AND fix_known_before THEN 1 ELSE 0 END) AS repeats_with_known_fix
FROM failure_occurrences
WHERE timestamp >= $start AND timestamp < $end
GROUP BY repository
ORDER BY repository
