services = [
  { name = "web", port = 8080, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "api", local_bind_port = 9090 },
    { destination_name = "cache", local_bind_port = 6379 },
  ] } } } },
  { name = "api", port = 9090, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "db", local_bind_port = 5432 },
  ] } } } },
  { name = "cache", port = 6379, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "db", local_bind_port = 5432 },
  ] } } } },
  { name = "db", port = 5432, address = "127.0.0.1", connect = { sidecar_service = { proxy = { upstreams = [
    { destination_name = "web", local_bind_port = 8080 },
  ] } } } },
]
