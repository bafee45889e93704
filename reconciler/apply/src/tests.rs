//! The engine against the real embedded control plane, started in-process on a loopback port
//! and reached over HTTP by the real client.

use super::*;
use mesh_plan::acl::{inventory_key, Inventory};
use mesh_plan::Action;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const SETTINGS: &str = "owner = \"unit\"\n";

fn defaults(name: &str, protocol: &str) -> String {
    format!("Kind = \"service-defaults\"\nName = \"{name}\"\nProtocol = \"{protocol}\"\n")
}

/// A repository of service-defaults entries, `(name, protocol)`.
fn repo(dir: &Path, entries: &[(&str, &str)]) -> mesh_loader::Loaded {
    std::fs::write(dir.join("mesh-gitops.hcl"), SETTINGS).unwrap();
    for (name, protocol) in entries {
        std::fs::write(dir.join(format!("{name}.hcl")), defaults(name, protocol)).unwrap();
    }
    let loaded = mesh_loader::load_dir(dir, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded
}

/// The embedded control plane in `state`, reached without any of the consul CLI's variables.
async fn embedded(state: &Path, loaded: &mesh_loader::Loaded) -> (Target, ApplyConfig) {
    let config = ApplyConfig {
        state_dir: state.to_owned(),
        ..ApplyConfig::default()
    };
    let target = connect_with_env(&config, loaded.state.settings.acl, &|_| None)
        .await
        .expect("the embedded control plane starts");
    assert!(target.embedded);
    assert!(target.client.address().starts_with("http://127.0.0.1:"));
    (target, config)
}

/// Applies, collecting the events as `(action sign, kind name)` and conflict markers.
async fn run(
    loaded: &mesh_loader::Loaded,
    target: &Target,
    config: &ApplyConfig,
    stop: &(dyn Fn() -> bool + Sync),
) -> (ApplyReport, Vec<String>) {
    let mut seen = Vec::new();
    let mut events = |e: ApplyEvent<'_>| {
        seen.push(match e {
            ApplyEvent::Applied(s) => format!("{} {} {}", s.action.sign(), s.kind, s.name),
            ApplyEvent::Conflict(s) => format!("? {} {}", s.kind, s.name),
            ApplyEvent::Refused(r) => format!("! {} {}", r.kind, r.name),
            ApplyEvent::Replanned { steps } => format!("re-planned {steps}"),
            ApplyEvent::Planned { .. } | ApplyEvent::Started(_) => return,
        })
    };
    let report = apply(loaded, target, config, stop, &mut events)
        .await
        .expect("the apply succeeds");
    (report, seen)
}

async fn inventory(target: &Target) -> Option<Inventory> {
    let (bytes, _) = target
        .client
        .kv_get(&inventory_key("unit"))
        .await
        .unwrap()?;
    Some(Inventory::from_json(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_apply_writes_everything_and_a_second_is_a_no_op() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let loaded = repo(dir.path(), &[("api", "http"), ("web", "http")]);
    let (target, config) = embedded(state.path(), &loaded).await;

    let (report, seen) = run(&loaded, &target, &config, &|| false).await;
    assert_eq!(report.writes, 2);
    assert_eq!((report.conflicts, report.stopped), (0, false));
    assert_eq!(
        seen,
        ["+ service-defaults api", "+ service-defaults web"],
        "{seen:?}"
    );
    let owned = inventory(&target).await.expect("the inventory is written");
    assert!(owned.get("service-defaults", "api").is_some());
    assert!(owned.get("service-defaults", "web").is_some());

    let (report, seen) = run(&loaded, &target, &config, &|| false).await;
    assert_eq!(report, ApplyReport::default());
    assert!(seen.is_empty(), "{seen:?}");
    let (plan, stats) = make_plan(&loaded, &target, &config).await.unwrap();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    assert_eq!(stats.objects, 2);
    assert!(stats.requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_between_plan_and_write_is_replanned_not_overwritten() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let loaded = repo(dir.path(), &[("api", "http"), ("web", "http")]);
    let (target, config) = embedded(state.path(), &loaded).await;
    run(&loaded, &target, &config, &|| false).await;

    // The repository changes `api`; someone else rewrites `api` (without our owner mark) after
    // the plan was made and before its step runs.
    std::fs::write(dir.path().join("api.hcl"), defaults("api", "grpc")).unwrap();
    let changed = mesh_loader::load_dir(dir.path(), &Default::default());
    let theirs = serde_json::json!({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"});
    let calls = AtomicUsize::new(0);
    let client = target.client.clone();
    let stop = || {
        // Call 1 starts the round; call 2 comes after the plan, before the first step.
        if calls.fetch_add(1, Ordering::SeqCst) == 1 {
            let handle = tokio::runtime::Handle::current();
            let written = tokio::task::block_in_place(|| {
                handle.block_on(client.put_bool("/v1/config", &theirs))
            });
            assert!(written.unwrap());
        }
        false
    };
    let (report, seen) = run(&changed, &target, &config, &stop).await;
    // The planned write found the entry changed (CAS) and was not made; the re-plan read their
    // write, and since the inventory still owns the entry, restored it from that reading.
    assert_eq!(report.conflicts, 1, "{seen:?}");
    assert_eq!(report.writes, 1, "{seen:?}");
    assert_eq!(
        seen,
        [
            "? service-defaults api",
            "re-planned 1",
            "~ service-defaults api"
        ],
        "{seen:?}"
    );
    let (plan, _) = make_plan(&changed, &target, &config).await.unwrap();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    let stored = target
        .client
        .config_entry("service-defaults", "api")
        .await
        .unwrap()
        .expect("the entry exists");
    let stored = stored.entry.to_json();
    assert_eq!(stored["Protocol"], "grpc");
    assert_eq!(stored["Meta"][mesh_plan::OWNER_KEY], "unit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_apply_at_a_step_boundary_with_the_inventory_written() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let loaded = repo(dir.path(), &[("a", "http"), ("b", "http"), ("c", "http")]);
    let (target, config) = embedded(state.path(), &loaded).await;

    // Call 1 starts the round, calls 2 and 3 come before the first and second steps.
    let calls = AtomicUsize::new(0);
    let stop = || calls.fetch_add(1, Ordering::SeqCst) >= 2;
    let (report, seen) = run(&loaded, &target, &config, &stop).await;
    assert!(report.stopped);
    assert_eq!(report.writes, 1, "{seen:?}");
    assert_eq!(seen, ["+ service-defaults a"]);
    let owned = inventory(&target).await.expect("the inventory is written");
    assert!(owned.get("service-defaults", "a").is_some());

    // The next apply converges from there.
    let (plan, _) = make_plan(&loaded, &target, &config).await.unwrap();
    let left: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str()))
        .collect();
    assert_eq!(left, [(Action::Create, "b"), (Action::Create, "c")]);
    let (report, _) = run(&loaded, &target, &config, &|| false).await;
    assert_eq!((report.writes, report.stopped), (2, false));
}

/// A repository with ACLs on (default deny): a policy, and a token linking it whose secret is
/// read from `secret` (a `file:` source).
fn acl_repo(dir: &Path, secret: &Path) -> mesh_loader::Loaded {
    std::fs::write(
        dir.join("mesh-gitops.hcl"),
        "owner = \"unit\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.hcl"),
        "Kind = \"acl-policy\"\nName = \"web\"\nRules = <<EOF\nservice \"web\" {\n  policy = \"write\"\n}\nEOF\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("token.hcl"),
        format!(
            "Kind = \"acl-token\"\nName = \"web\"\nDescription = \"token for web\"\nPolicies = [{{ Name = \"web\" }}]\nSecretIDFrom = \"file:{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let loaded = mesh_loader::load_dir(dir, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_objects_are_claimed_then_created_in_link_order_and_converge() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let secret = dir.path().join("web.secret");
    std::fs::write(&secret, "6f1c2f0e-3b8a-4c55-9a41-7d0e5b2c9f10\n").unwrap();
    let loaded = acl_repo(dir.path(), &secret);
    let (target, config) = embedded(state.path(), &loaded).await;

    let (report, seen) = run(&loaded, &target, &config, &|| false).await;
    assert_eq!(seen, ["+ acl-policy web", "+ acl-token web"]);
    assert_eq!(report.writes, 2);
    // The token was created with the AccessorID claimed for it in the inventory.
    let owned = inventory(&target).await.expect("the inventory is written");
    let record = owned.get("acl-token", "web").expect("the token is owned");
    assert!(!record.id.is_empty());
    let token = target
        .client
        .acl_read(mesh_consul::AclType::Token, &record.id)
        .await
        .unwrap()
        .expect("the token exists under its claimed AccessorID");
    let mesh_consul::AclObject::Token(token) = token else {
        panic!("a token answer is a token: {token:?}")
    };
    assert_eq!(token.description, "token for web");
    // The secret went to Consul, never into what the client hands back.
    assert!(!format!("{token:?}").contains("6f1c2f0e"), "{token:?}");

    let (report, seen) = run(&loaded, &target, &config, &|| false).await;
    assert_eq!(report, ApplyReport::default(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_stops_the_apply_before_anything_is_written() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let secret = dir.path().join("absent.secret");
    let loaded = acl_repo(dir.path(), &secret);
    let (target, config) = embedded(state.path(), &loaded).await;

    let err = apply(&loaded, &target, &config, &|| false, &mut |_| {})
        .await
        .expect_err("the secret source is missing");
    assert!(
        matches!(&err, ApplyError::SecretUnreadable { path, .. } if path == &secret.display().to_string()),
        "{err:?}"
    );
    assert!(inventory(&target).await.is_none(), "nothing was claimed");
    let policies = target
        .client
        .acl_list(mesh_consul::AclType::Policy)
        .await
        .unwrap();
    assert!(
        policies.iter().all(|p| p.name() != "web"),
        "nothing was written: {policies:?}"
    );
}

mod parallel;
