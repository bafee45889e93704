//! Generates large, valid, deterministic synthetic mesh repositories for benchmarks: services
//! spread over Nomad job files and Consul service definitions in nested directories, one
//! service-intentions entry per destination allowing exactly its declared callers, some
//! service-defaults, optional ACL policies and tokens, and a `mesh-gitops.hcl`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub services: usize,
    /// Upstreams each service declares (to services with a higher index, so the graph is
    /// acyclic and every name exists).
    pub upstreams_per_service: usize,
    pub seed: u64,
    /// ACLs on with default deny, a policy and a token per service.
    pub acl: bool,
    /// Files per directory before starting a new one.
    pub files_per_dir: usize,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            services: 1_000,
            upstreams_per_service: 3,
            seed: 1,
            acl: true,
            files_per_dir: 100,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthSummary {
    pub files: usize,
    pub services: usize,
    pub upstreams: usize,
    pub intention_entries: usize,
    pub intention_sources: usize,
    pub acl_objects: usize,
}

/// The whole repository follows from the seed.
struct Rng(mesh_seed::SplitMix64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Writes the repository under `dir` (which must exist or be creatable).
pub fn generate(dir: &Path, spec: &SynthSpec) -> io::Result<SynthSummary> {
    let mut rng = Rng(mesh_seed::SplitMix64::new(spec.seed));
    let n = spec.services;
    let mut summary = SynthSummary::default();
    std::fs::create_dir_all(dir)?;
    let mut settings = String::from("datacenter = \"dc1\"\nowner = \"synth\"\n");
    if spec.acl {
        settings.push_str("acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n");
    }
    std::fs::write(dir.join("mesh-gitops.hcl"), settings)?;
    summary.files += 1;

    // Upstreams: each service calls a few later services.
    let mut upstreams: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ups) in upstreams.iter_mut().enumerate() {
        let later = n - i - 1;
        for _ in 0..spec.upstreams_per_service.min(later) {
            let j = i + 1 + rng.below(later);
            if !ups.contains(&j) {
                ups.push(j);
            }
        }
        ups.sort_unstable();
        for &j in ups.iter() {
            callers[j].push(i);
        }
    }

    let per_dir = spec.files_per_dir.max(1);
    let mut file_index = 0usize;
    let mut write = |rel: String, text: String, summary: &mut SynthSummary| -> io::Result<()> {
        let sub = dir.join(format!("d{:03}", file_index / per_dir));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(rel), text)?;
        file_index += 1;
        summary.files += 1;
        Ok(())
    };

    for i in 0..n {
        let svc = name(i);
        let port = 8000 + (i % 1000) as u16;
        summary.services += 1;
        summary.upstreams += upstreams[i].len();
        // Two thirds Nomad jobs, one third service definitions.
        if i % 3 != 2 {
            let mut ups = String::new();
            for (k, &j) in upstreams[i].iter().enumerate() {
                let _ = write!(
                    ups,
                    "            upstreams {{\n              destination_name = \"{}\"\n              local_bind_port  = {}\n            }}\n",
                    name(j),
                    10000 + k
                );
            }
            let job = format!(
                "job \"{svc}\" {{\n  datacenters = [\"dc1\"]\n\n  group \"{svc}\" {{\n    count = {count}\n\n    network {{\n      mode = \"bridge\"\n    }}\n\n    service {{\n      name = \"{svc}\"\n      port = \"{port}\"\n\n      connect {{\n        sidecar_service {{\n          proxy {{\n{ups}          }}\n        }}\n      }}\n    }}\n\n    task \"app\" {{\n      driver = \"docker\"\n      config {{\n        image = \"example/{svc}:1\"\n      }}\n    }}\n  }}\n}}\n",
                count = 1 + rng.below(3),
            );
            write(format!("{svc}.nomad.hcl"), job, &mut summary)?;
        } else {
            let ups: Vec<String> = upstreams[i]
                .iter()
                .enumerate()
                .map(|(k, &j)| {
                    format!(
                        "{{\"destination_name\": \"{}\", \"local_bind_port\": {}}}",
                        name(j),
                        10000 + k
                    )
                })
                .collect();
            let def = format!(
                "{{\n  \"service\": {{\n    \"name\": \"{svc}\",\n    \"port\": {port},\n    \"address\": \"127.0.0.1\",\n    \"connect\": {{\"sidecar_service\": {{\"proxy\": {{\"upstreams\": [{}]}}}}}}\n  }}\n}}\n",
                ups.join(", ")
            );
            write(format!("{svc}.json"), def, &mut summary)?;
        }
        if !callers[i].is_empty() {
            let mut entry =
                format!("Kind = \"service-intentions\"\nName = \"{svc}\"\nSources = [\n");
            for &c in &callers[i] {
                let _ = writeln!(entry, "  {{ Name = \"{}\", Action = \"allow\" }},", name(c));
            }
            entry.push_str("]\n");
            summary.intention_entries += 1;
            summary.intention_sources += callers[i].len();
            write(format!("{svc}-intentions.hcl"), entry, &mut summary)?;
        }
        if i % 10 == 0 {
            let proto = if rng.below(2) == 0 { "http" } else { "grpc" };
            write(
                format!("{svc}-defaults.yaml"),
                format!("Kind: service-defaults\nName: {svc}\nProtocol: {proto}\n"),
                &mut summary,
            )?;
        }
        if spec.acl {
            let policy = format!(
                "Kind = \"acl-policy\"\nName = \"{svc}\"\nRules = <<EOF\nservice \"{svc}\" {{\n  policy = \"write\"\n}}\nservice \"{svc}-sidecar-proxy\" {{\n  policy = \"write\"\n}}\nservice_prefix \"\" {{\n  policy = \"read\"\n}}\nEOF\n"
            );
            write(format!("{svc}-policy.hcl"), policy, &mut summary)?;
            let token = format!(
                "{{\"Kind\": \"acl-token\", \"Name\": \"{svc}\", \"Policies\": [{{\"Name\": \"{svc}\"}}], \"SecretIDFrom\": \"env:TOKEN_{}\"}}\n",
                svc.replace('-', "_").to_uppercase()
            );
            write(format!("{svc}-token.json"), token, &mut summary)?;
            summary.acl_objects += 2;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                    out.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_repository() {
        let spec = SynthSpec {
            services: 50,
            seed: 7,
            ..SynthSpec::default()
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = generate(a.path(), &spec).unwrap();
        let sb = generate(b.path(), &spec).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(tree(a.path()), tree(b.path()));
        let other = tempfile::tempdir().unwrap();
        generate(other.path(), &SynthSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(tree(a.path()), tree(other.path()));
    }

    #[test]
    fn the_summary_counts_what_was_written() {
        let spec = SynthSpec {
            services: 30,
            files_per_dir: 7,
            ..SynthSpec::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let s = generate(dir.path(), &spec).unwrap();
        assert_eq!(tree(dir.path()).len(), s.files);
        assert_eq!(s.services, 30);
        assert_eq!(
            s.intention_sources, s.upstreams,
            "every declared upstream has its allow"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().count() > 5,
            "files are spread over directories"
        );
    }
}
