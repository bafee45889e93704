datacenter = "dc1"
owners = "platform"
