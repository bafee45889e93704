Kind              = "acl-token"
Name              = "apps"
ServiceIdentities = [{ ServiceName = "web" }, { ServiceName = "api" }]
