Kind     = "service-defaults"
Name     = var.db_name
Protocol = "tcp"
