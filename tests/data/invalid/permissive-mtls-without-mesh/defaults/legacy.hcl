Kind          = "service-defaults"
Name          = "legacy"
MutualTLSMode = "permissive"
