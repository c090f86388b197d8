-- name: last_deployment
-- description: The latest completed deployment of each repository to each environment, over
--   all history: when it finished, its version and its outcome.
-- params: none
SELECT repository, environment, timestamp AS last_deployment_at, version, status
FROM (
  SELECT repository, environment, timestamp, version, status,
         ROW_NUMBER() OVER (PARTITION BY repository, environment ORDER BY timestamp DESC, deployment_id) AS n
  FROM deployments
  WHERE status IN ('success', 'failure')
) AS ranked
WHERE n = 1
ORDER BY repository, environment
