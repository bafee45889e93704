# Who may change intentions: only the platform team's role.
Kind        = "acl-policy"
Name        = "intentions-admin"
Description = "manage intentions for every service"
Rules       = <<EOF
service_prefix "" {
  policy     = "read"
  intentions = "write"
}
EOF
