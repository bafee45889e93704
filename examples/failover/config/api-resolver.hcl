# When no instance of api is healthy, requests on web's upstream "api" go to api-backup.
Kind = "service-resolver"
Name = "api"
ConnectTimeout = "5s"
Failover = {
  "*" = { Service = "api-backup" }
}
