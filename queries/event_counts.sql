-- name: event_counts
-- description: Stored events by repository, environment, event type and status, over all
--   history (the deploylens_events_total counter).
-- params: none
SELECT repository, environment, event_type, status, COUNT(*) AS events
FROM events
GROUP BY repository, environment, event_type, status
ORDER BY repository, environment, event_type, status
