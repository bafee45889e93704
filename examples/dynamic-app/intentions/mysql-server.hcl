# The intention `consul intention create -allow dynamic-app mysql-server` creates, as a config
# entry. Without it, default deny blocks the app's only upstream.
Kind = "service-intentions"
Name = "mysql-server"
Sources = [
  {
    Name   = "dynamic-app"
    Action = "allow"
  }
]
