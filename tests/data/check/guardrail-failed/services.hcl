services = [
  { name = "web", port = 8080, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [{ destination_name = "db", local_bind_port = 5432 }] } } } },
  { name = "db", port = 5432, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [] } } } },
]
