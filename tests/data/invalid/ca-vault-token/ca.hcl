Kind = "ca-config"
Provider = "vault"
Config {
  Address = "https://vault.internal:8200"
  Token = "hvs.CAESIJ0literal"
  RootPKIPath = "connect-root"
  IntermediatePKIPath = "connect-intermediate"
}
