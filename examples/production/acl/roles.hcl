Kind        = "acl-role"
Name        = "mesh-operator"
Description = "platform engineers: manage intentions, read everything else"
Policies    = [{ Name = "intentions-admin" }]
