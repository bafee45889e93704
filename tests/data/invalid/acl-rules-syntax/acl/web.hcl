Kind = "acl-policy"
Name = "web"
Rules = <<EOF
service "web" {
  policy = "write"

service_prefix "" {
  policy = "read"
}
EOF
