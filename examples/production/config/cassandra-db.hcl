Kind     = "service-defaults"
Name     = "cassandra-db"
Protocol = "tcp"
