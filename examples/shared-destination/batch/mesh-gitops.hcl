datacenter = "dc1"
owner      = "batch"
