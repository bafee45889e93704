require "acl-on" {
  description = "not a guardrail block"
}
forbid "typo" {
  findings = ["W9999"]
}
