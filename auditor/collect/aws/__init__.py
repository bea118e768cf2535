"""AWS, read with boto3 and read-only by construction: load balancers, listeners and rules, target
groups and their health, security groups, instances, ECS services."""
