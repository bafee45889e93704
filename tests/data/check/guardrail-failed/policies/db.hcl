assert "nobody-reaches-db" {
  description = "the database is closed during the migration"
  deny = [{ from = "*", to = "db" }]
}
