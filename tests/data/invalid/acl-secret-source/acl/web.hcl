Kind = "acl-token"
Name = "web"
SecretIDFrom = "vault:secret/web"
ServiceIdentities = [{ ServiceName = "web" }]
