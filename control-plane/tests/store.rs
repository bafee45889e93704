//! The state machine against a model: random command sequences give the model's answers, the
//! index moves by one on each committed write and not at all otherwise, and the state reopened
//! from disk is the state in memory. A commit that fails changes nothing, in memory or on disk.

use mesh_control_plane::env::Ids;
use mesh_control_plane::http::ApiError;
use mesh_control_plane::store::{
    AclPolicyStored, AclRoleStored, Commit, DeleteEntry, KvDelete, KvPut, Link, PolicyWrite,
    PutEntry, RedbStorage, RoleWrite, SetCaConfig, State, StateError, Storage, Store, StoreError,
    TokenWrite, Written,
};
use mesh_model::{ConfigEntry, ServiceDefaults};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What a check-and-set index is, relative to the object it names.
#[derive(Debug, Clone, Copy)]
enum Cas {
    None,
    Zero,
    Current,
    Stale,
}

#[derive(Debug, Clone)]
enum Cmd {
    PutEntry {
        name: u8,
        protocol: u8,
        cas: Cas,
    },
    DeleteEntry {
        name: u8,
        cas: Cas,
    },
    KvPut {
        key: u8,
        value: u8,
        cas: Cas,
    },
    KvDelete {
        key: u8,
        cas: Cas,
    },
    /// Acquires (or releases) the key's lock for a session.
    KvLock {
        key: u8,
        which: u8,
        release: bool,
    },
    CreateSession,
    DestroySession {
        which: u8,
    },
    CreatePolicy {
        name: u8,
    },
    DeletePolicy {
        which: u8,
    },
    /// A role or token linking the policy of that name.
    CreateRole {
        name: u8,
        policy: u8,
    },
    CreateToken {
        policy: u8,
    },
    DeleteRole {
        which: u8,
    },
}

fn cas() -> impl Strategy<Value = Cas> {
    prop_oneof![
        Just(Cas::None),
        Just(Cas::Zero),
        Just(Cas::Current),
        Just(Cas::Stale)
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0..3u8, 0..3u8, cas()).prop_map(|(name, protocol, cas)| Cmd::PutEntry {
            name,
            protocol,
            cas
        }),
        (0..3u8, cas()).prop_map(|(name, cas)| Cmd::DeleteEntry { name, cas }),
        (0..3u8, 0..4u8, cas()).prop_map(|(key, value, cas)| Cmd::KvPut { key, value, cas }),
        (0..3u8, cas()).prop_map(|(key, cas)| Cmd::KvDelete { key, cas }),
        (0..3u8, 0..3u8, any::<bool>()).prop_map(|(key, which, release)| Cmd::KvLock {
            key,
            which,
            release
        }),
        Just(Cmd::CreateSession),
        (0..4u8).prop_map(|which| Cmd::DestroySession { which }),
        (0..3u8).prop_map(|name| Cmd::CreatePolicy { name }),
        (0..4u8).prop_map(|which| Cmd::DeletePolicy { which }),
        (0..2u8, 0..3u8).prop_map(|(name, policy)| Cmd::CreateRole { name, policy }),
        (0..3u8).prop_map(|policy| Cmd::CreateToken { policy }),
        (0..3u8).prop_map(|which| Cmd::DeleteRole { which }),
    ]
}

/// The model: plain maps of what each object should be, with its ModifyIndex.
#[derive(Debug, Default)]
struct Model {
    index: u64,
    config: BTreeMap<String, (String, u64)>,
    /// Key -> value, ModifyIndex, the session holding its lock.
    kv: BTreeMap<String, (Vec<u8>, u64, Option<String>)>,
    sessions: BTreeSet<String>,
    /// Policy name -> ID.
    policies: BTreeMap<String, String>,
    /// Role name -> ID.
    roles: BTreeMap<String, String>,
    tokens: usize,
}

/// How a command was answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Applied,
    Unchanged,
    Refused,
    NotFound,
    Rejected,
}

fn answer<T>(r: Result<T, StateError>, written: impl Fn(&T) -> Written) -> (Answer, Option<u64>) {
    match r {
        Ok(t) => match written(&t) {
            Written::Applied(i) => (Answer::Applied, Some(i)),
            Written::Unchanged => (Answer::Unchanged, None),
            Written::Refused => (Answer::Refused, None),
        },
        Err(StateError::NotFound(_)) => (Answer::NotFound, None),
        Err(StateError::Rejected(_)) => (Answer::Rejected, None),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn service_defaults(name: &str, protocol: &str) -> ConfigEntry {
    ConfigEntry::ServiceDefaults(ServiceDefaults {
        name: name.to_owned(),
        protocol: Some(protocol.to_owned()),
        ..Default::default()
    })
}

/// The index a `Cas` choice stands for, given the named object's ModifyIndex.
fn cas_index(cas: Cas, current: Option<u64>) -> Option<u64> {
    match cas {
        Cas::None => None,
        Cas::Zero => Some(0),
        Cas::Current => Some(current.unwrap_or(0)),
        Cas::Stale => Some(current.unwrap_or(0) + 1000),
    }
}

/// Runs one command on the store and the model; returns the store's and the model's answers
/// and the index the store reported for a committed write.
// One arm per command, each the store's call beside the model's rule it must agree with.
#[allow(clippy::too_many_lines)]
fn step(store: &Store, ids: &Ids, m: &mut Model, c: &Cmd) -> (Answer, Answer, Option<u64>) {
    let next = m.index + 1;
    match c {
        Cmd::PutEntry {
            name,
            protocol,
            cas,
        } => {
            let name = format!("s{name}");
            let protocol = ["http", "grpc", "tcp"][*protocol as usize].to_owned();
            let existing = m.config.get(&name).cloned();
            let cas = cas_index(*cas, existing.as_ref().map(|e| e.1));
            let got = answer(
                store.put_entry(PutEntry {
                    entry: service_defaults(&name, &protocol),
                    cas,
                }),
                |w| *w,
            );
            let expect = match (&existing, cas) {
                (Some(e), _) if e.0 == protocol => Answer::Unchanged,
                (_, None) | (None, Some(0)) => Answer::Applied,
                (Some(e), Some(n)) if n == e.1 && n != 0 => Answer::Applied,
                _ => Answer::Refused,
            };
            if expect == Answer::Applied {
                m.config.insert(name, (protocol, next));
            }
            (got.0, expect, got.1)
        }
        Cmd::DeleteEntry { name, cas } => {
            let name = format!("s{name}");
            let existing = m.config.get(&name).map(|e| e.1);
            let cas = cas_index(*cas, existing);
            let got = answer(
                store.delete_entry(DeleteEntry {
                    kind: "service-defaults".into(),
                    name: name.clone(),
                    cas,
                }),
                |w| *w,
            );
            let expect = match (existing, cas) {
                (None, _) => Answer::Unchanged,
                (Some(_), None) => Answer::Applied,
                (Some(i), Some(n)) if i == n => Answer::Applied,
                _ => Answer::Refused,
            };
            if expect == Answer::Applied {
                m.config.remove(&name);
            }
            (got.0, expect, got.1)
        }
        Cmd::KvPut { key, value, cas } => {
            let key = format!("k{key}");
            let existing = m.kv.get(&key).map(|e| e.1);
            let cas = cas_index(*cas, existing);
            let value = vec![*value];
            let got = answer(
                store.kv_put(KvPut {
                    key: key.clone(),
                    value: value.clone(),
                    cas,
                    ..KvPut::default()
                }),
                |w| *w,
            );
            let expect = match (existing, cas) {
                (_, None) | (None, Some(0)) => Answer::Applied,
                (Some(i), Some(n)) if i == n && n != 0 => Answer::Applied,
                _ => Answer::Refused,
            };
            if expect == Answer::Applied {
                let holder = m.kv.get(&key).and_then(|e| e.2.clone());
                m.kv.insert(key, (value, next, holder));
            }
            (got.0, expect, got.1)
        }
        Cmd::KvDelete { key, cas } => {
            let key = format!("k{key}");
            let existing = m.kv.get(&key).map(|e| e.1);
            let cas = cas_index(*cas, existing);
            let got = answer(
                store.kv_delete(KvDelete {
                    key: key.clone(),
                    recurse: false,
                    cas,
                }),
                |w| *w,
            );
            let expect = match (existing, cas) {
                (e, Some(n)) if e != Some(n) => Answer::Refused,
                (None, _) => Answer::Unchanged,
                _ => Answer::Applied,
            };
            if expect == Answer::Applied {
                m.kv.remove(&key);
            }
            (got.0, expect, got.1)
        }
        Cmd::KvLock {
            key,
            which,
            release,
        } => {
            let key = format!("k{key}");
            let session = m
                .sessions
                .iter()
                .nth(*which as usize)
                .cloned()
                .unwrap_or_else(|| "no-such-session".into());
            let holder = m.kv.get(&key).and_then(|e| e.2.clone());
            let releasing = *release;
            let (acquire, release) = if releasing {
                (None, Some(session.clone()))
            } else {
                (Some(session.clone()), None)
            };
            let got = answer(
                store.kv_put(KvPut {
                    key: key.clone(),
                    value: vec![9],
                    acquire,
                    release,
                    ..KvPut::default()
                }),
                |w| *w,
            );
            let (expect, new_holder) = match (releasing, &holder) {
                (false, _) if !m.sessions.contains(&session) => (Answer::Rejected, None),
                (false, Some(h)) if *h != session => (Answer::Refused, None),
                (false, _) => (Answer::Applied, Some(session)),
                (true, Some(h)) if *h == session => (Answer::Applied, None),
                (true, _) => (Answer::Refused, None),
            };
            if expect == Answer::Applied {
                m.kv.insert(key, (vec![9], next, new_holder));
            }
            (got.0, expect, got.1)
        }
        Cmd::CreateSession => {
            let cmd = mesh_control_plane::store::CreateSession {
                node: "n1".into(),
                behavior: "release".into(),
                ..Default::default()
            };
            let got = answer(store.create_session(cmd, || ids.next()), |s| {
                Written::Applied(s.create_index)
            });
            let id = store
                .read()
                .sessions
                .keys()
                .find(|id| !m.sessions.contains(*id))
                .cloned();
            m.sessions.extend(id);
            (got.0, Answer::Applied, got.1)
        }
        Cmd::DestroySession { which } => {
            let id = m
                .sessions
                .iter()
                .nth(*which as usize)
                .cloned()
                .unwrap_or_else(|| "no-such-session".into());
            let got = answer(store.destroy_session(&id), |w| *w);
            let expect = if m.sessions.remove(&id) {
                // Its locks are released (the default behaviour).
                for e in m.kv.values_mut().filter(|e| e.2.as_ref() == Some(&id)) {
                    e.1 = next;
                    e.2 = None;
                }
                Answer::Applied
            } else {
                Answer::Unchanged
            };
            (got.0, expect, got.1)
        }
        Cmd::CreatePolicy { name } => {
            let name = format!("p{name}");
            let w = PolicyWrite {
                name: name.clone(),
                rules: r#"key_prefix "" { policy = "read" }"#.into(),
                ..PolicyWrite::default()
            };
            let r = store.acl_write(w, ids, SystemTime::UNIX_EPOCH);
            let created = r.as_ref().ok().map(|p| p.id.clone());
            let got = answer(r, |p| Written::Applied(p.modify_index));
            let expect = if m.policies.contains_key(&name) {
                Answer::Rejected
            } else {
                m.policies.extend(created.map(|id| (name, id)));
                Answer::Applied
            };
            (got.0, expect, got.1)
        }
        Cmd::DeletePolicy { which } => {
            let entry = m
                .policies
                .iter()
                .nth(*which as usize)
                .map(|(n, id)| (n.clone(), id.clone()));
            let id = entry
                .as_ref()
                .map(|e| e.1.clone())
                .unwrap_or_else(|| "none".into());
            let got = answer(store.acl_delete::<AclPolicyStored>(&id), |i| {
                Written::Applied(*i)
            });
            let expect = match entry {
                Some((name, _)) => {
                    m.policies.remove(&name);
                    Answer::Applied
                }
                None => Answer::NotFound,
            };
            (got.0, expect, got.1)
        }
        Cmd::CreateRole { name, policy } => {
            let name = format!("r{name}");
            let policy = format!("p{policy}");
            let w = RoleWrite {
                name: name.clone(),
                policies: vec![Link {
                    id: String::new(),
                    name: policy.clone(),
                }],
                ..RoleWrite::default()
            };
            let r = store.acl_write(w, ids, SystemTime::UNIX_EPOCH);
            let created = r.as_ref().ok().map(|r| r.id.clone());
            let got = answer(r, |r| Written::Applied(r.modify_index));
            let expect = if m.roles.contains_key(&name) || !m.policies.contains_key(&policy) {
                Answer::Rejected
            } else {
                m.roles.extend(created.map(|id| (name, id)));
                Answer::Applied
            };
            (got.0, expect, got.1)
        }
        Cmd::CreateToken { policy } => {
            let policy = format!("p{policy}");
            let w = TokenWrite {
                description: "t".into(),
                policies: vec![Link {
                    id: String::new(),
                    name: policy.clone(),
                }],
                ..TokenWrite::default()
            };
            let got = answer(store.acl_write(w, ids, SystemTime::UNIX_EPOCH), |t| {
                Written::Applied(t.modify_index)
            });
            let expect = if m.policies.contains_key(&policy) {
                m.tokens += 1;
                Answer::Applied
            } else {
                Answer::Rejected
            };
            (got.0, expect, got.1)
        }
        Cmd::DeleteRole { which } => {
            let entry = m
                .roles
                .iter()
                .nth(*which as usize)
                .map(|(n, id)| (n.clone(), id.clone()));
            let id = entry
                .as_ref()
                .map(|e| e.1.clone())
                .unwrap_or_else(|| "none".into());
            let got = answer(store.acl_delete::<AclRoleStored>(&id), |i| {
                Written::Applied(*i)
            });
            let expect = match entry {
                Some((name, _)) => {
                    m.roles.remove(&name);
                    Answer::Applied
                }
                None => Answer::NotFound,
            };
            (got.0, expect, got.1)
        }
    }
}

/// The state, comparable: config entries by their JSON form (spans differ once decoded).
fn view(s: &State) -> String {
    let mut s = s.clone();
    let config: BTreeMap<_, _> = std::mem::take(&mut s.config)
        .into_iter()
        .map(|(k, e)| (k, (e.entry.to_json(), e.create_index, e.modify_index)))
        .collect();
    format!("{s:?}\n{config:?}")
}

fn check_against_model(s: &State, m: &Model) {
    assert_eq!(s.index, m.index);
    let config: BTreeMap<String, (String, u64)> = s
        .config
        .iter()
        .map(|((_, name), e)| {
            let protocol = match &e.entry {
                ConfigEntry::ServiceDefaults(d) => d.protocol.clone().unwrap_or_default(),
                other => panic!("unexpected entry {other:?}"),
            };
            (name.clone(), (protocol, e.modify_index))
        })
        .collect();
    assert_eq!(config, m.config);
    let kv: BTreeMap<String, (Vec<u8>, u64, Option<String>)> =
        s.kv.iter()
            .map(|(k, e)| {
                let v = (e.value.clone(), e.modify_index, e.session.clone());
                (k.clone(), v)
            })
            .collect();
    assert_eq!(kv, m.kv);
    assert_eq!(
        s.sessions.keys().cloned().collect::<BTreeSet<_>>(),
        m.sessions
    );
    let policies: BTreeMap<String, String> = s
        .acl
        .policies
        .values()
        .map(|p| (p.name.clone(), p.id.clone()))
        .collect();
    assert_eq!(policies, m.policies);
    let roles: BTreeMap<String, String> = s
        .acl
        .roles
        .values()
        .map(|r| (r.name.clone(), r.id.clone()))
        .collect();
    assert_eq!(roles, m.roles);
    assert_eq!(s.acl.tokens.len(), m.tokens);
}

fn run(cmds: &[Cmd]) {
    let dir = tempfile::tempdir().unwrap();
    let ids = Ids::seeded(7);
    let mut store = Store::open(dir.path()).unwrap();
    let mut m = Model::default();
    for c in cmds {
        let before = store.read().index;
        let (got, expect, index) = step(&store, &ids, &mut m, c);
        assert_eq!(got, expect, "{c:?}");
        let after = store.read().index;
        if got == Answer::Applied {
            assert_eq!(
                after,
                before + 1,
                "a committed write moves the index by one"
            );
            assert_eq!(index, Some(after), "{c:?} reports its index");
            m.index = after;
        } else {
            assert_eq!(after, before, "{c:?} changed nothing, not even the index");
        }
        check_against_model(&store.read(), &m);
        // What is on disk is what is in memory.
        let memory = view(&store.read());
        drop(store);
        store = Store::open(dir.path()).unwrap();
        assert_eq!(view(&store.read()), memory, "after {c:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_state_machine_follows_the_model(cmds in prop::collection::vec(cmd(), 1..22)) {
        run(&cmds);
    }
}

/// Real redb storage whose next commit can be made to fail.
struct Flaky {
    inner: RedbStorage,
    fail_next: Arc<AtomicBool>,
}

impl Storage for Flaky {
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.load()
    }

    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Write("injected commit failure".into()));
        }
        self.inner.commit(commit)
    }
}

fn flaky(dir: &Path) -> (Store, Arc<AtomicBool>) {
    let fail_next = Arc::new(AtomicBool::new(false));
    let storage = Flaky {
        inner: RedbStorage::open(dir).unwrap(),
        fail_next: fail_next.clone(),
    };
    (Store::with_storage(Box::new(storage)).unwrap(), fail_next)
}

fn rotation(bits: u32) -> SetCaConfig {
    SetCaConfig {
        provider: "consul".into(),
        config: serde_json::Map::new(),
        force_without_cross_signing: false,
        params: mesh_ca::CaParams {
            key_type: "ec".into(),
            key_bits: bits,
            ..mesh_ca::CaParams::default()
        },
        force_rotation: false,
    }
}

/// Asserts the write failed as a commit failure (a 500), changing nothing in memory.
fn assert_failed_unchanged<T: std::fmt::Debug>(
    store: &Store,
    before: &str,
    r: Result<T, StateError>,
) {
    let e = r.expect_err("the commit was made to fail");
    assert!(matches!(e, StateError::Store(_)), "{e:?}");
    let api = ApiError::from(e);
    assert_eq!(api.status, 500);
    assert!(api.body.contains("injected commit failure"), "{}", api.body);
    assert_eq!(view(&store.read()), before, "memory is unchanged");
}

#[test]
fn a_failed_commit_changes_neither_memory_nor_disk() {
    let dir = tempfile::tempdir().unwrap();
    let keys = mesh_ca::RandomKeys;
    let now = SystemTime::now();
    let (store, fail_next) = flaky(dir.path());
    store.ensure_ca(|| "cluster".into(), &keys, now).unwrap();
    let put = |protocol: &str| PutEntry {
        entry: service_defaults("web", protocol),
        cas: None,
    };
    assert!(matches!(
        store.put_entry(put("http")),
        Ok(Written::Applied(_))
    ));

    // A root rotation whose commit fails: the old root stays active in memory.
    let before = view(&store.read());
    let roots = store.read().ca.as_ref().unwrap().roots.len();
    fail_next.store(true, Ordering::SeqCst);
    assert_failed_unchanged(
        &store,
        &before,
        store.set_ca_config(rotation(384), now, &keys),
    );
    assert_eq!(store.read().ca.as_ref().unwrap().roots.len(), roots);

    // A config-entry write whose commit fails.
    fail_next.store(true, Ordering::SeqCst);
    assert_failed_unchanged(&store, &before, store.put_entry(put("grpc")));

    // Memory and disk agree.
    drop(store);
    let (store, _) = flaky(dir.path());
    assert_eq!(
        view(&store.read()),
        before,
        "the disk holds what memory held"
    );

    // And the same writes succeed once storage does.
    let index = store.read().index;
    assert_eq!(
        store.set_ca_config(rotation(384), now, &keys).unwrap(),
        index + 1
    );
    assert_eq!(store.read().ca.as_ref().unwrap().roots.len(), roots + 1);
    assert_eq!(
        store.put_entry(put("grpc")).unwrap(),
        Written::Applied(index + 2)
    );
}
