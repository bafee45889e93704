# A canary split on a service whose protocol is tcp (no service-defaults, no proxy-defaults):
# Consul refuses the write, because only HTTP traffic can be split.
Kind = "service-splitter"
Name = "api"
Splits = [
  { Weight = 90, Service = "api" },
  { Weight = 10, Service = "api-v2" },
]
