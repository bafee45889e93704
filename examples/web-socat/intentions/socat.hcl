# consul intention create -deny web socat
Kind = "service-intentions"
Name = "socat"
Sources = [
  {
    Name        = "web"
    Action      = "deny"
    Description = "web may no longer reach socat"
  }
]
