server          = true
verify_incoming = "true"
encrypt         = "this is not a valid key"

ports {
  https = "8501"
}
