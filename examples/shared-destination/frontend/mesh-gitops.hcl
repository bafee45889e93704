datacenter = "dc1"
owner      = "frontend"
