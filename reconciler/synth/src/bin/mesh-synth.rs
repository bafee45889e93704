//! `mesh-synth --services 10000 --out DIR [--seed N] [--upstreams N] [--no-acl]`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut spec = mesh_synth::SynthSpec::default();
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        let parsed: Result<(), String> = (|| {
            match a.as_str() {
                "--services" => spec.services = value("--services")?.parse().map_err(|e| format!("--services: {e}"))?,
                "--upstreams" => spec.upstreams_per_service = value("--upstreams")?.parse().map_err(|e| format!("--upstreams: {e}"))?,
                "--seed" => spec.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--no-acl" => spec.acl = false,
                "--out" => out = Some(PathBuf::from(value("--out")?)),
                "-h" | "--help" => return Err("usage: mesh-synth --services N --out DIR [--seed N] [--upstreams N] [--no-acl]".into()),
                other => return Err(format!("unknown argument {other}")),
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            eprintln!("mesh-synth: {e}");
            return ExitCode::from(2);
        }
    }
    let Some(out) = out else {
        eprintln!("mesh-synth: --out DIR is required");
        return ExitCode::from(2);
    };
    match mesh_synth::generate(&out, &spec) {
        Ok(s) => {
            println!(
                "{} services, {} upstreams, {} intention entries ({} sources), {} ACL objects, {} files in {}",
                s.services, s.upstreams, s.intention_entries, s.intention_sources, s.acl_objects, s.files, out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mesh-synth: {e}");
            ExitCode::from(1)
        }
    }
}
