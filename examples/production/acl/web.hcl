Kind        = "acl-policy"
Name        = "web"
Description = "web may register itself and its sidecar, and read the catalog"
Rules       = <<EOF
service "web" {
  policy = "write"
}
service "web-sidecar-proxy" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
EOF
