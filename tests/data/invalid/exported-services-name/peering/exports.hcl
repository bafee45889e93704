Kind = "exported-services"
Name = "dc1"
Services = [{ Name = "api", Consumers = [{ Peer = "dc2" }] }]
