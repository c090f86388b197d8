-- name: rejects_by_reason
-- description: Rejected lines per file and reason, with the first and last line number and an
--   example message: where to look to fix a repository's event file.
-- params: none
SELECT
  source_file,
  reason,
  COUNT(*) AS lines,
  MIN(source_line) AS first_line,
  MAX(source_line) AS last_line,
  MIN(message) AS example_message
FROM rejects
GROUP BY source_file, reason
ORDER BY source_file, reason
