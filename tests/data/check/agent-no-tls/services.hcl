services = [
  { name = "web", port = 8080, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = "api", local_bind_port = 9090 }] } } } },
  { name = "api", port = 9090, address = "127.0.0.1", connect = { sidecar_service = {} } },
]
