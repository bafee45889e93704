Kind = "acl-role"
Name = "ops"
Policies = [{ Name = "operator-read" }]
