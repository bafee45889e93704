Kind = "acl-policy"
Name = "web policy!"
Rules = <<EOF
service "web" { policy = "write" }
EOF
