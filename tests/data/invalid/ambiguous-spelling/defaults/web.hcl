Kind = "service-defaults"
Name = "web"
MutualTLSMode = "strict"
mutual_tls_mode = "strict"
