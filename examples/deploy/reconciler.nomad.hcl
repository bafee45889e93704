# mesh-gitops reconcile on Nomad: two replicas, one leads through a Consul session lock, the
# other stands by. Build an image from this repository (`cargo build --release`, the binary
# in any small base image) and set `image` below.
#
#   nomad var put nomad/jobs/mesh-gitops-reconciler consul_token=<token with reconciler-policy.hcl> \
#     git_ssh_key=@deploy_key
#   nomad job run reconciler.nomad.hcl

job "mesh-gitops-reconciler" {
  datacenters = ["dc1"]
  type        = "service"

  group "reconciler" {
    count = 2

    # Never two replicas on one node: a node failure should leave a standby.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {
        to = 9090
      }
    }

    service {
      name = "mesh-gitops-reconciler"
      port = "http"
      tags = ["metrics"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "30s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "60s"
        }
      }
    }

    task "reconcile" {
      driver = "docker"

      # SIGTERM first: the current step finishes, the status is written, the lock released.
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      config {
        image = "registry.example.com/mesh-gitops:0.1.0"
        ports = ["http"]
        args = [
          "reconcile",
          "--source", "git@git.example.com:platform/mesh.git",
          "--branch", "main",
          "--interval", "1m",
          "--lock-ttl", "15s",
          "--listen", "0.0.0.0:9090",
          "--log-format", "json",
          "--cache-dir", "/alloc/data/mesh-gitops",
          "--id", "${NOMAD_ALLOC_ID}",
          "--require-signed",
          "--trusted-keys", "/local/allowed_signers",
        ]
      }

      env {
        CONSUL_HTTP_ADDR        = "http://${attr.unique.network.ip-address}:8500"
        MESH_GITOPS_GIT_SSH_KEY = "/secrets/deploy_key"
      }

      # The token and the deploy key from Nomad Variables, into the secrets directory: never
      # in the job file, never in the logs.
      template {
        destination = "secrets/env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/mesh-gitops-reconciler" }}CONSUL_HTTP_TOKEN={{ .consul_token }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/deploy_key"
        perms       = "0600"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/mesh-gitops-reconciler" }}{{ .git_ssh_key }}{{ end }}
        EOT
      }

      template {
        destination = "local/allowed_signers"
        data        = <<-EOT
          release@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithTheReleaseSigningKey
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
