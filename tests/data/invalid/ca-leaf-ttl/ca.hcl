Kind = "ca-config"
Provider = "consul"
Config {
  LeafCertTTL = "30m"
}
