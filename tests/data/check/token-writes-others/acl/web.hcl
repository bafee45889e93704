Kind  = "acl-policy"
Name  = "web"
Rules = <<EOF
service "web" {
  policy = "write"
}
service "api" {
  policy = "write"
}
EOF
