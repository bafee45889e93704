services = [
  { name = "web", port = 8080, connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = "api", local_bind_port = 9090 }] } } } },
  { name = "api", port = 9091, connect = { sidecar_service = {} } },
  { name = "admin", port = 9092, connect = { sidecar_service = {} } },
]
