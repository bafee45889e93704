Kind = "acl-token"
Name = "web"
SecretID = "4a1f2a3b-9c8d-4e5f-a6b7-c8d9e0f1a2b3"
ServiceIdentities = [{ ServiceName = "web" }]
