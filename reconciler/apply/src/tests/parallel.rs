//! `--parallelism`: independent steps written at once, told in the plan's order, and a failure
//! that stops new steps with every started step's outcome recorded.

use super::*;
use crate::{Journal, StepOutcome};

fn many(n: usize, protocol: &'static str) -> Vec<(String, &'static str)> {
    (0..n).map(|i| (format!("x{i:02}"), protocol)).collect()
}

fn names<'a>(v: &'a [(String, &'static str)]) -> Vec<(&'a str, &'static str)> {
    v.iter().map(|(n, p)| (n.as_str(), *p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_apply_writes_what_a_sequential_one_does_told_in_plan_order() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sa, sb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let entries = many(24, "http");
    let (la, lb) = (
        repo(a.path(), &names(&entries)),
        repo(b.path(), &names(&entries)),
    );
    let (ta, mut ca) = embedded(sa.path(), &la).await;
    let (tb, mut cb) = embedded(sb.path(), &lb).await;
    ca.parallelism = Some(1);
    cb.parallelism = Some(8);
    let (one, seen_one) = run(&la, &ta, &ca, &|| false).await;
    let (eight, seen_eight) = run(&lb, &tb, &cb, &|| false).await;
    assert_eq!(one.writes, 24);
    assert_eq!(eight, one);
    assert_eq!(
        seen_eight, seen_one,
        "the same steps, told in the same order"
    );
    let owned = inventory(&tb).await.expect("the inventory is written");
    for (name, _) in &entries {
        assert!(owned.get("service-defaults", name).is_some(), "{name}");
        let got = tb
            .client
            .config_entry("service-defaults", name)
            .await
            .unwrap();
        assert!(got.is_some(), "{name} is in Consul");
    }
    let (again, seen) = run(&lb, &tb, &cb, &|| false).await;
    assert_eq!(again, ApplyReport::default());
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_stops_new_steps_and_each_started_step_is_reported() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut entries = many(30, "tcp");
    entries.push(("zz".into(), "http"));
    entries.push(("keep".into(), "tcp"));
    let loaded = repo(dir.path(), &names(&entries));
    let (target, mut config) = embedded(state.path(), &loaded).await;
    run(&loaded, &target, &config, &|| false).await;
    // Another writer's L7 intention on zz: Consul refuses to delete zz's http protocol under
    // it (`validateProposedConfigEntryInServiceGraph`).
    let l7 = serde_json::json!({
        "Kind": "service-intentions", "Name": "zz",
        "Sources": [{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}],
    });
    assert!(target.client.put_bool("/v1/config", &l7).await.unwrap());

    // The repository drops every xNN and zz: the deletes run newest name first, zz leading.
    let next = tempfile::tempdir().unwrap();
    let loaded = repo(next.path(), &[("keep", "tcp")]);
    config.parallelism = Some(2);
    let mut journal = Journal::default();
    let err = apply(&loaded, &target, &config, &|| false, &mut |e| {
        journal.hear(&e)
    })
    .await
    .expect_err("deleting zz is refused");
    journal.failed();
    assert!(err.to_string().contains("zz"), "{err}");
    let failed: Vec<&str> = journal
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Failed)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(failed, ["zz"]);
    // Every step told started has its outcome; those applied are gone from Consul, and no
    // step started after the failure was seen, so most deletes never ran.
    let applied: Vec<&str> = journal
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Applied)
        .map(|s| s.name.as_str())
        .collect();
    assert!(applied.len() < 30, "{applied:?}");
    for (name, _) in many(30, "tcp") {
        let there = target
            .client
            .config_entry("service-defaults", &name)
            .await
            .unwrap()
            .is_some();
        assert_eq!(there, !applied.contains(&name.as_str()), "{name}");
    }
    // What was done is recorded: the inventory no longer holds the deleted entries.
    let owned = inventory(&target).await.expect("the inventory is written");
    for name in &applied {
        assert!(owned.get("service-defaults", name).is_none(), "{name}");
    }
    assert!(owned.get("service-defaults", "zz").is_some());
}
