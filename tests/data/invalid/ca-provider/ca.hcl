Kind = "ca-config"
Provider = "openssl"
Config {
  LeafCertTTL = "72h"
}
