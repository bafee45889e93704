Kind = "acl-policy"
Name = "web"
Description = "no rules"
