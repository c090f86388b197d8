-- name: time_to_restore
-- description: Time to restore per repository and environment, for failure streaks that began in
--   the window: restores, median, p95 and longest restore time (first failure to the next
--   successful deployment or rollback), streaks still open, and the median reported
--   resolution_time_seconds where teams wrote one.
-- params: start, end
SELECT
  repository,
  environment,
  COUNT(restore_seconds) AS restores,
  percentile_cont(0.50) WITHIN GROUP (ORDER BY restore_seconds) AS median_restore_seconds,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY restore_seconds) AS p95_restore_seconds,
  MAX(restore_seconds) AS max_restore_seconds,
  SUM(CASE WHEN restored_at IS NULL THEN 1 ELSE 0 END) AS open_streaks,
  MIN(CASE WHEN restored_at IS NULL THEN failed_at END) AS open_since,
  percentile_cont(0.50) WITHIN GROUP (ORDER BY reported_resolution_seconds) AS median_reported_resolution_seconds
FROM restores
WHERE failed_at >= $start AND failed_at < $end
GROUP BY repository, environment
ORDER BY repository, environment
