Kind  = "acl-policy"
Name  = "deployer"
Rules = <<EOF
service_prefix "" {
  policy = "write"
}
EOF
