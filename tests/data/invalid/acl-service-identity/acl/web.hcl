Kind = "acl-token"
Name = "web"
ServiceIdentities = [{ ServiceName = "Web_Frontend" }]
