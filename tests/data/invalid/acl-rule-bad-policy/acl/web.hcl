Kind = "acl-policy"
Name = "web"
Rules = <<EOF
service "web" {
  policy = "write"
}
node_prefix "" {
  policy = "list"
}
EOF
