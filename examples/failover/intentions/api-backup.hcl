# Failover reaches api-backup's sidecar, which decides by its own intentions: web must be
# allowed here too, or failover would be refused exactly when it is needed.
Kind = "service-intentions"
Name = "api-backup"
Sources = [
  { Name = "web", Action = "allow" },
]
