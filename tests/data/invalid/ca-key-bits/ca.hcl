Kind = "ca-config"
Provider = "consul"
Config {
  PrivateKeyType = "ec"
  PrivateKeyBits = 512
}
