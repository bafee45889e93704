//! The handlers on tokio's paused clock: leaf renewal and session expiry.

use super::*;
use crate::store::{CreateSession, KvPut, Table};
use axum::extract::{Path, RawQuery, State};
use std::time::Duration;

fn ctx() -> Arc<Ctx> {
    Arc::new(Ctx {
        store: Store::in_memory(),
        session_deadlines: Default::default(),
        jitter: mesh_seed::SharedSplitMix64::new(1),
        acl: auth::AclConfig {
            enabled: false,
            default_allow: true,
        },
        datacenter: "dc1".into(),
        node: "n1".into(),
        leaves: Default::default(),
        faults: None,
        audit: None,
        env: crate::env::Env::system(),
    })
}

async fn leaf_at(ctx: &Arc<Ctx>, query: Option<&str>) -> (u64, String) {
    let r = connect::leaf(
        State(ctx.clone()),
        Path("web".into()),
        HeaderMap::new(),
        RawQuery(query.map(str::to_owned)),
    )
    .await
    .into_response();
    assert_eq!(r.status(), StatusCode::OK);
    let index = r.headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    (index, v["SerialNumber"].as_str().unwrap().to_owned())
}

#[tokio::test(start_paused = true)]
async fn the_leaf_is_a_blocking_query_on_the_injected_clock() {
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let now = Arc::new(std::sync::Mutex::new(start));
    let clock = now.clone();
    let mut c = Arc::into_inner(ctx()).unwrap();
    c.env = crate::env::Env {
        clock: Arc::new(move || *clock.lock().unwrap()),
        ids: crate::env::Ids::seeded(1),
        keys: Arc::new(mesh_ca::RandomKeys),
    };
    let ctx = Arc::new(c);
    ctx.store
        .ensure_ca(|| ctx.env.ids.next(), &*ctx.env.keys, ctx.env.now())
        .unwrap();
    let roots_index = ctx.store.read().table_index(Table::Ca);
    let (index, serial) = leaf_at(&ctx, None).await;
    assert_eq!(
        ctx.store.read().table_index(Table::Ca),
        roots_index,
        "signing a leaf leaves the roots' index alone"
    );
    // Nothing changes: the query waits out `wait` (tokio's clock) and answers the same leaf.
    let t = tokio::time::Instant::now();
    let q = format!("index={index}&wait=10s");
    assert_eq!(leaf_at(&ctx, Some(&q)).await, (index, serial.clone()));
    assert!(t.elapsed() >= Duration::from_secs(10));
    // Past three quarters of its lifetime (72h by default) on the injected clock: renewed.
    *now.lock().unwrap() = start + Duration::from_secs(55 * 3600);
    let (renewed, serial2) = leaf_at(&ctx, Some(&q)).await;
    assert!(renewed > index);
    assert_ne!(serial2, serial);
}

fn create(ctx: &Ctx, ttl: &str) -> crate::store::Session {
    let cmd = CreateSession {
        ttl: ttl.into(),
        behavior: "release".into(),
        node: "n1".into(),
        ..CreateSession::default()
    };
    ctx.store
        .create_session(cmd, || ctx.env.ids.next())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_after_twice_their_ttl_and_release_their_locks() {
    let ctx = ctx();
    let a = create(&ctx, "10s");
    let b = create(&ctx, "");
    let lock = KvPut {
        key: "leader".into(),
        value: b"a".to_vec(),
        acquire: Some(a.id.clone()),
        ..KvPut::default()
    };
    assert!(ctx.store.kv_put(lock).unwrap().ok());
    let reaper = tokio::spawn(reap_sessions(ctx.clone()));
    tokio::time::sleep(Duration::from_secs(19)).await;
    assert!(
        ctx.store.read().sessions.contains_key(&a.id),
        "still inside 2 x TTL"
    );
    // A renewal restarts the clock.
    session::arm_session(&ctx, &a);
    tokio::time::sleep(Duration::from_secs(19)).await;
    assert!(ctx.store.read().sessions.contains_key(&a.id));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = ctx.store.read();
    assert!(!s.sessions.contains_key(&a.id), "expired");
    assert_eq!(s.kv["leader"].session, None, "its lock is released");
    assert!(
        s.sessions.contains_key(&b.id),
        "a session without TTL never expires"
    );
    drop(s);
    reaper.abort();
}
