# The built-in CA with explicit settings: EC P-256 keys, leaves renewed every three days.
Kind     = "ca-config"
Provider = "consul"
Config {
  LeafCertTTL         = "72h"
  IntermediateCertTTL = "8760h"
  RootCertTTL         = "87600h"
  PrivateKeyType      = "ec"
  PrivateKeyBits      = 256
}
