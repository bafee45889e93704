//! `mesh-gitops import --out DIR`: a repository written from a running Consul (or the embedded
//! control plane's state directory), and with `--adopt` what it wrote taken over as owned.

use crate::exit::Exit;
use anyhow::{bail, Context, Result};
use mesh_apply::import::{ImportOptions, Imported};
use mesh_apply::ApplyConfig;
use mesh_model::{AclSettings, DefaultPolicy};
use mesh_plan::{Action, Step};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Where to write the repository (created; must be empty if it exists).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Consul's address (else CONSUL_HTTP_ADDR; with neither, the embedded control plane).
    #[arg(long, value_name = "URL")]
    consul: Option<String>,
    /// The embedded control plane's state directory.
    #[arg(long, default_value = ".mesh-gitops")]
    state_dir: PathBuf,
    /// The owner the repository is for [default: the one owner marking the entries, else
    /// mesh-gitops].
    #[arg(long)]
    owner: Option<String>,
    /// The ACL default policy to declare (ACLs on) [default: what the agent reports; for the
    /// embedded control plane, deny when its state directory keeps a bootstrap token].
    #[arg(long, value_parser = ["allow", "deny"])]
    acl_default_policy: Option<String>,
    /// Then take over what was imported: entries marked and recorded as owned, ACL objects
    /// recorded in the inventory (nothing else is written).
    #[arg(long)]
    adopt: bool,
}

pub fn run(args: &ImportArgs) -> Result<ExitCode> {
    if std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty; import writes a new repository",
            args.out.display()
        );
    }
    let config = ApplyConfig {
        consul: args.consul.clone(),
        state_dir: args.state_dir.clone(),
        adopt: true,
        ..ApplyConfig::default()
    };
    let acl = args.acl_default_policy.as_deref().map(|p| AclSettings {
        enabled: true,
        default_policy: if p == "allow" {
            DefaultPolicy::Allow
        } else {
            DefaultPolicy::Deny
        },
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The embedded control plane keeps ACLs on exactly when it keeps a bootstrap token.
        let embedded_acl = acl.unwrap_or(AclSettings {
            enabled: args.state_dir.join("bootstrap-token").exists(),
            default_policy: DefaultPolicy::Deny,
        });
        let target = mesh_apply::connect(&config, embedded_acl).await?;
        let opts = ImportOptions {
            owner: args.owner.clone(),
            acl: acl.or(target.embedded.then_some(embedded_acl)),
        };
        let imported = mesh_apply::import::import(&target.client, &opts).await?;
        write(&args.out, &imported)?;
        report(&args.out, &imported, target.client.address());
        if args.adopt {
            adopt(&args.out, &target, &config).await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Exit::Ok.into())
}

fn write(out: &Path, imported: &Imported) -> Result<()> {
    for (path, text) in &imported.files {
        let file = out.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

fn report(out: &Path, imported: &Imported, address: &str) {
    let counts: Vec<String> = imported
        .counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "Imported from {address} into {} for owner \"{}\": {}.",
        out.display(),
        imported.owner,
        if counts.is_empty() {
            "nothing".to_owned()
        } else {
            counts.join(", ")
        }
    );
    for s in &imported.skipped {
        println!("  not imported: {s}");
    }
    if imported.counts.contains_key("acl-token") {
        println!("Tokens name their secret with SecretIDFrom = \"env:CONSUL_TOKEN_<NAME>\"; point each at where the secret is kept.");
    }
}

/// Whether a step only takes over an object identical to the repository.
fn adopts(s: &Step) -> bool {
    s.reason.starts_with("adopted: identical") || s.action == Action::Record
}

/// Plans the written repository with `--adopt` and applies it only if every step is an
/// adoption of an identical object: an import that did not read back exactly is never
/// written over Consul.
async fn adopt(out: &Path, target: &mesh_apply::Target, config: &ApplyConfig) -> Result<()> {
    let loaded = mesh_loader::load_dir(out, &mesh_loader::LoadOptions::default());
    if loaded.has_errors() {
        crate::report::diagnostics(&loaded, crate::ReportFormat::Text)?;
        bail!("the imported repository does not load; nothing was adopted");
    }
    let (plan, _) = mesh_apply::make_plan(&loaded, target, config).await?;
    if let Some(s) = plan.steps.iter().find(|s| !adopts(s)) {
        bail!(
            "{} \"{}\" would not be adopted as it is ({}); nothing was adopted",
            s.kind.as_str(),
            s.name,
            s.reason
        );
    }
    mesh_apply::apply(&loaded, target, config, &|| false, &mut |_| {}).await?;
    println!("Adopted: {} object(s) now owned.", plan.steps.len());
    Ok(())
}
