Kind = "acl-token"
Name = "web"
Policies = [{ ID = "e7a7cbe3-4d52-49c6-9d29-5fd0e3f1c2aa" }]
