-- name: first_deployment
-- description: The first deployment of each repository to each environment (over all history):
--   when it started (its in_progress record, if any), its version and outcome, and whether it
--   falls in the window (a first deployment to a new environment).
-- params: start, end
SELECT
  repository,
  environment,
  first_deployment_at,
  first_version,
  first_status,
  first_deployment_at >= $start AND first_deployment_at < $end AS new_in_window
FROM (
  SELECT
    repository,
    environment,
    COALESCE(started_at, timestamp) AS first_deployment_at,
    version AS first_version,
    status AS first_status,
    ROW_NUMBER() OVER (PARTITION BY repository, environment ORDER BY COALESCE(started_at, timestamp), deployment_id) AS n
  FROM deployments
) AS ranked
WHERE n = 1
ORDER BY repository, environment
