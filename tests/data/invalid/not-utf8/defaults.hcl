Kind = "service-defaults"
Name = "café"
