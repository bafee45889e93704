Kind = "terminating-gateway"
Name = "egress"
Services = [{ Name = "billing", CertFile = "/certs/client.pem" }]
