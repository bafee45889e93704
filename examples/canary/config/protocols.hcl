# Only HTTP can be split: both services of the chain speak http.
Kind     = "service-defaults"
Name     = "api"
Protocol = "http"
