Kind = "ca-config"
Provider = "consul"
