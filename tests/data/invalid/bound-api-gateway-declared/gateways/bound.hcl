Kind = "bound-api-gateway"
Name = "public"
