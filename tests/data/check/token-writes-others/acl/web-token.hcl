Kind     = "acl-token"
Name     = "web"
Policies = [{ Name = "web" }]
