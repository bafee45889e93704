//! The loop's decisions with its effects replaced: commits from memory, a Consul that is a map
//! of config entries (planned and written one step at a time, and able to be down), a status
//! record kept in memory, and tokio's paused clock, so backoff and timers are exact.

mod pgp_keys;

use mesh_loader::{Loaded, RepoFile};
use mesh_plan::{Action, Plan, Step};
use mesh_reconcile::notify::{Notice, Notify};
use mesh_reconcile::signing::TrustedKeys;
use mesh_reconcile::suspend::Suspension;
use mesh_reconcile::{
    drive, Applied, Applier, Clock, CommitFiles, Config, Effects, Inputs, Next, Reconciler, Shared,
    Signed, Source, SourceError, Status, StatusSink,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_secs(60);

fn rev(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

/// A repository of service-defaults: `(name, protocol)` pairs, owner `team`.
fn files(entries: &[(&str, &str)]) -> Vec<RepoFile> {
    let mut out = vec![RepoFile {
        path: "mesh-gitops.hcl".into(),
        contents: b"datacenter = \"dc1\"\nowner = \"team\"\n".to_vec(),
    }];
    for (name, protocol) in entries {
        out.push(RepoFile {
            path: format!("defaults/{name}.hcl"),
            contents: format!(
                "Kind = \"service-defaults\"\nName = \"{name}\"\nProtocol = \"{protocol}\"\n"
            )
            .into_bytes(),
        });
    }
    out
}

/// Commits in memory.
#[derive(Default)]
struct Commits {
    files: Mutex<BTreeMap<String, Vec<RepoFile>>>,
    signed: Mutex<BTreeMap<String, Signed>>,
}

impl Commits {
    fn add(&self, rev: &str, entries: &[(&str, &str)]) {
        self.files
            .lock()
            .unwrap()
            .insert(rev.to_owned(), files(entries));
    }
}

impl Source for Commits {
    fn shown(&self) -> String {
        "memory".into()
    }
    fn branch(&self) -> &str {
        "main"
    }
    fn fetch(&self) -> Result<String, SourceError> {
        Err(SourceError::Fetch {
            branch: "main".into(),
            url: "memory".into(),
            message: "commits in memory are published, not fetched".into(),
        })
    }
    fn read(&self, rev: &str) -> Result<CommitFiles, SourceError> {
        let files = self.files.lock().unwrap().get(rev).cloned().unwrap();
        Ok(CommitFiles {
            summary: format!("commit {rev}"),
            files,
        })
    }
    fn signature(&self, rev: &str) -> Result<Option<Signed>, SourceError> {
        Ok(self.signed.lock().unwrap().remove(rev))
    }
}

/// Consul as a map from `kind/name` to the entry's JSON, and the engine over it: the gate
/// refuses a service named `forbidden`; a plan creates, updates and deletes entries; an apply
/// writes one entry per step, asking `stop` before each.
#[derive(Default)]
struct Consul {
    entries: Mutex<BTreeMap<String, String>>,
    down: AtomicBool,
    plans: AtomicUsize,
    applies: AtomicUsize,
    /// Called after each write with the count so far.
    on_write: Mutex<Option<OnWrite>>,
    /// Entries another owner marks (name to owner): planned as blocking refusals, never written.
    foreign: Mutex<BTreeMap<String, String>>,
}

type OnWrite = Box<dyn FnMut(usize) + Send>;

fn desired(loaded: &Loaded) -> BTreeMap<String, String> {
    loaded
        .state
        .config_entries
        .iter()
        .map(|e| {
            (
                format!("{}/{}", e.kind().as_str(), e.name()),
                e.to_json().to_string(),
            )
        })
        .collect()
}

impl Consul {
    fn plan_now(&self, loaded: &Loaded) -> Result<Plan, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("Consul is unreachable".into());
        }
        let want = desired(loaded);
        let have = self.entries.lock().unwrap().clone();
        let foreign = self.foreign.lock().unwrap().clone();
        let mut steps = Vec::new();
        let mut refused = Vec::new();
        for (key, body) in &want {
            let name = key.split_once('/').unwrap().1;
            if let Some(owner) = foreign.get(name) {
                refused.push(mesh_plan::Refusal {
                    kind: step(Action::Update, key, None).kind,
                    name: name.into(),
                    reason: format!("exists and is owned by \"{owner}\"; it is left unchanged"),
                    blocking: true,
                    owner: Some(owner.clone()),
                });
                continue;
            }
            let action = match have.get(key) {
                None => Action::Create,
                Some(b) if b != body => Action::Update,
                Some(_) => continue,
            };
            steps.push(step(action, key, Some(body)));
        }
        for key in have.keys().filter(|k| !want.contains_key(*k)) {
            steps.push(step(Action::Delete, key, None));
        }
        Ok(Plan {
            steps,
            refused,
            ..Plan::default()
        })
    }

    fn get(&self, name: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap();
        let body = entries.get(&format!("service-defaults/{name}"))?;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["Protocol"].as_str().map(str::to_owned)
    }

    /// A change made outside git.
    fn tamper(&self, name: &str, protocol: &str) {
        let mut entries = self.entries.lock().unwrap();
        let key = format!("service-defaults/{name}");
        let mut v: serde_json::Value = serde_json::from_str(&entries[&key]).unwrap();
        v["Protocol"] = protocol.into();
        entries.insert(key, v.to_string());
    }
}

fn step(action: Action, key: &str, body: Option<&String>) -> Step {
    let (kind, name) = key.split_once('/').unwrap();
    Step {
        action,
        kind: mesh_plan::ObjectKind::ConfigEntry(mesh_model::EntryKind::parse(kind).unwrap()),
        name: name.into(),
        reason: String::new(),
        before: None,
        after: body.map(|b| serde_json::from_str(b).unwrap()),
        cas: 0,
        id: None,
        root_rotation: false,
    }
}

impl Applier for Consul {
    type Error = String;

    fn gate(&self, loaded: &Loaded) -> Result<(), String> {
        if loaded.has_errors() {
            return Err("the repository does not validate".into());
        }
        match loaded
            .state
            .config_entries
            .iter()
            .find(|e| e.name() == "forbidden")
        {
            Some(_) => Err("check fails: \"forbidden\" is declared".into()),
            None => Ok(()),
        }
    }

    fn plan(&self, loaded: &Loaded) -> impl Future<Output = Result<Plan, String>> {
        self.plans.fetch_add(1, Ordering::SeqCst);
        std::future::ready(self.plan_now(loaded))
    }

    async fn apply(
        &self,
        loaded: &Loaded,
        stop: &(dyn Fn() -> bool + Sync),
        log: &mut Vec<String>,
    ) -> Result<Applied, String> {
        self.applies.fetch_add(1, Ordering::SeqCst);
        let plan = self.plan_now(loaded)?;
        let mut done = Applied::default();
        for s in &plan.steps {
            if stop() {
                done.stopped = true;
                return Ok(done);
            }
            let key = format!("{}/{}", s.kind, s.name);
            let mut entries = self.entries.lock().unwrap();
            match &s.after {
                Some(v) => entries.insert(key, v.to_string()),
                None => entries.remove(&key),
            };
            drop(entries);
            log.push(format!("  {} {} \"{}\"", s.action.sign(), s.kind, s.name));
            done.writes += 1;
            if let Some(f) = self.on_write.lock().unwrap().as_mut() {
                f(done.writes);
            }
        }
        Ok(done)
    }
}

/// The status record, in memory.
#[derive(Default)]
struct Record {
    stored: Mutex<Option<Status>>,
    writes: AtomicUsize,
    /// The owner's suspension flag.
    suspended: Mutex<Option<Suspension>>,
}

struct Sink(Arc<Record>);

impl StatusSink for Sink {
    async fn read(&self) -> Option<Status> {
        self.0.stored.lock().unwrap().clone()
    }
    async fn suspended(&self) -> Option<Suspension> {
        self.0.suspended.lock().unwrap().clone()
    }
    async fn write(&self, status: &Status) -> bool {
        self.0.writes.fetch_add(1, Ordering::SeqCst);
        *self.0.stored.lock().unwrap() = Some(status.clone());
        true
    }
}

impl Record {
    fn result(&self) -> String {
        self.stored
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.result.clone())
            .unwrap_or_default()
    }
}

/// tokio's (paused) clock, and a wall clock that moves with it.
struct TestClock {
    start: Instant,
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_780_000_000) + (Instant::now() - self.start)
    }
    fn sleep_until(&self, t: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(t)
    }
}

struct Rig {
    head: watch::Sender<Option<String>>,
    leader: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    session: Arc<AtomicBool>,
    commits: Arc<Commits>,
    consul: Arc<Consul>,
    record: Arc<Record>,
    shared: Arc<Shared>,
    notices: Arc<Notices>,
}

/// The notices the loop sends, and how often a gated commit configured the channels.
#[derive(Default)]
struct Notices {
    sent: Mutex<Vec<Notice>>,
    configured: AtomicUsize,
}

impl Notify for Notices {
    fn configure(&self, _: &mesh_model::Notifications) {
        self.configured.fetch_add(1, Ordering::SeqCst);
    }
    fn send(&self, notice: Notice) {
        self.sent.lock().unwrap().push(notice);
    }
}

impl Notices {
    /// `(result, revision)` of every notice so far, oldest first.
    fn results(&self) -> Vec<(String, String)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|n| (n.result.clone(), n.revision.clone()))
            .collect()
    }
}

type Loop = Reconciler<Commits, Consul, Sink, TestClock>;

fn rig(self_heal: bool) -> (Rig, Loop) {
    rig_trusting(self_heal, None)
}

fn rig_trusting(self_heal: bool, trusted: Option<TrustedKeys>) -> (Rig, Loop) {
    rig_with(self_heal, trusted, false)
}

fn rig_with(self_heal: bool, trusted: Option<TrustedKeys>, heal_only: bool) -> (Rig, Loop) {
    let (head, head_rx) = watch::channel(None);
    let (leader, leader_rx) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let session = Arc::new(AtomicBool::new(false));
    let (commits, consul, record) = Default::default();
    let clock = Arc::new(TestClock {
        start: Instant::now(),
    });
    let shared = Arc::new(Shared::new(
        Box::new(|| 0),
        Duration::from_secs(300),
        clock.wall(),
    ));
    let config = Config {
        id: "alpha".into(),
        owner: Some("team".into()),
        self_heal,
        interval: INTERVAL,
        pass_timeout: Duration::from_secs(300),
        lock_ttl: Duration::from_secs(15),
        load: Default::default(),
        trusted,
        heal_only,
    };
    let rig = Rig {
        head,
        leader,
        stop,
        session: session.clone(),
        commits,
        consul,
        record,
        shared: shared.clone(),
        notices: Arc::default(),
    };
    let effects = Effects {
        source: rig.commits.clone(),
        applier: rig.consul.clone(),
        sink: Sink(rig.record.clone()),
        clock,
        notify: rig.notices.clone(),
    };
    let inputs = Inputs {
        head: head_rx,
        leader: leader_rx,
        stop: stop_rx,
        session,
        lease: None,
    };
    let r = Reconciler::new(&config, "team".into(), effects, shared, inputs);
    (rig, r)
}

impl Rig {
    fn commit(&self, n: u8, entries: &[(&str, &str)]) -> String {
        let rev = rev(n);
        self.commits.add(&rev, entries);
        self.head.send_replace(Some(rev.clone()));
        rev
    }

    fn metric(&self, name: &str) -> f64 {
        self.shared
            .metrics
            .render(0, false)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    fn plans(&self) -> usize {
        self.consul.plans.load(Ordering::SeqCst)
    }

    fn applies(&self) -> usize {
        self.consul.applies.load(Ordering::SeqCst)
    }
}

/// Leading, with `api` and `web` applied at revision 1.
async fn applied_once(self_heal: bool) -> (Rig, Loop, String) {
    let (rig, mut r) = rig(self_heal);
    rig.leader.send_replace(true);
    let c1 = rig.commit(1, &[("api", "http"), ("web", "tcp")]);
    r.turn().await;
    assert_eq!(r.status().result, "applied", "{:#?}", r.status());
    (rig, r, c1)
}

#[tokio::test(start_paused = true)]
async fn a_commit_passing_the_gate_is_applied_and_the_status_names_its_revision() {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    let c1 = rig.commit(1, &[("api", "http"), ("web", "tcp")]);
    let turn = r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("applied", c1.as_str())
    );
    assert_eq!(s.applied_revision, c1);
    assert_eq!(
        s.reason,
        "2 write(s): 2 change(s): + service-defaults \"api\", + service-defaults \"web\""
    );
    assert_eq!(s.leader, "alpha");
    assert_eq!(rig.record.stored.lock().unwrap().as_ref(), Some(s));
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(rig.consul.get("web").as_deref(), Some("tcp"));
    assert_eq!(turn.next, Next::Wait(Instant::now() + INTERVAL));
    assert_eq!(
        turn.watch,
        Some(vec![
            "/v1/config/service-defaults".to_owned(),
            "/v1/kv/mesh-gitops/team/inventory".to_owned(),
            "/v1/kv/mesh-gitops/team/suspended".to_owned()
        ])
    );
    let metrics = rig.shared.metrics.render(0, true);
    assert!(
        metrics.contains(&format!(
            "mesh_gitops_last_applied_timestamp{{revision=\"{c1}\"}}"
        )),
        "{metrics}"
    );
    assert_eq!(rig.metric("mesh_gitops_writes_total"), 2.0);
    assert!(rig.shared.ready.load(Ordering::Relaxed));

    // Nothing changed: the next pass finds Consul in sync and records nothing new.
    r.turn().await;
    assert_eq!(r.status().history.len(), 1);
    assert_eq!(rig.applies(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_commit_failing_the_gate_is_refused_and_consul_stays_at_the_last_applied() {
    let (rig, mut r, c1) = applied_once(true).await;
    let c2 = rig.commit(2, &[("api", "grpc"), ("forbidden", "tcp")]);
    r.turn().await;
    let s = r.status().clone();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("refused", c2.as_str())
    );
    assert_eq!(
        s.reason,
        format!(
            "check fails: \"forbidden\" is declared; keeping {}",
            &c1[..12]
        )
    );
    assert_eq!(s.applied_revision, c1);
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(rig.consul.get("forbidden"), None);
    assert_eq!(rig.metric("mesh_gitops_gate_failures_total"), 1.0);
    assert_eq!(rig.record.stored.lock().unwrap().as_ref(), Some(&s));

    // Later passes keep Consul at the last applied commit, and the refusal stands.
    r.turn().await;
    assert_eq!(r.status(), &s);
    assert_eq!(rig.applies(), 1);

    // An invalid commit is refused too.
    let c3 = rig.commit(3, &[("api", "not a protocol\"")]);
    r.turn().await;
    assert_eq!(r.status().revision, c3);
    assert_eq!(r.status().result, "refused");
    assert!(
        r.status()
            .reason
            .starts_with("the repository does not validate"),
        "{:#?}",
        r.status()
    );
}

#[tokio::test(start_paused = true)]
async fn drift_between_commits_is_healed() {
    let (rig, mut r, c1) = applied_once(true).await;
    rig.consul.tamper("api", "grpc");
    r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("healed", c1.as_str())
    );
    assert_eq!(
        s.reason,
        "1 write(s): 1 change(s): ~ service-defaults \"api\""
    );
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(rig.metric("mesh_gitops_drift_events_total"), 1.0);
    assert_eq!(
        rig.metric("mesh_gitops_reconcile_passes_total{result=\"healed\"}"),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn without_self_heal_drift_is_reported_once_and_left_in_place() {
    let (rig, mut r, c1) = applied_once(false).await;
    rig.consul.tamper("api", "grpc");
    for _ in 0..3 {
        r.turn().await;
        let s = r.status();
        assert_eq!(
            (s.result.as_str(), s.revision.as_str()),
            ("drift", c1.as_str())
        );
        assert_eq!(
            s.reason,
            "1 change(s): ~ service-defaults \"api\" (self-heal is off)"
        );
        assert_eq!(s.applied_revision, c1);
    }
    assert_eq!(rig.consul.get("api").as_deref(), Some("grpc"));
    assert_eq!(rig.metric("mesh_gitops_drift_events_total"), 1.0);
    assert_eq!(rig.applies(), 1);

    // Put back by hand: in sync again, and the status says so.
    rig.consul.tamper("api", "http");
    r.turn().await;
    assert_eq!(r.status().result, "in-sync");
    assert_eq!(r.status().reason, "Consul matches git again");
}

#[tokio::test(start_paused = true)]
async fn an_entry_another_owner_holds_makes_the_result_blocked_and_is_listed() {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    rig.consul
        .foreign
        .lock()
        .unwrap()
        .insert("web".into(), "payments".into());
    let c1 = rig.commit(1, &[("api", "http"), ("web", "tcp")]);
    r.turn().await;
    let s = r.status();
    // What could be applied was; the commit counts as applied, and the result says blocked.
    assert_eq!(
        (s.result.as_str(), s.applied_revision.as_str()),
        ("blocked", c1.as_str())
    );
    assert_eq!(
        s.reason,
        "1 write(s): 1 change(s): + service-defaults \"api\"; left unchanged: service-defaults \"web\""
    );
    assert_eq!(
        s.blocked,
        ["service-defaults \"web\": exists and is owned by \"payments\"; it is left unchanged"]
    );
    assert_eq!(s.foreign, ["service-defaults \"web\" (owner \"payments\")"]);
    assert!(s.render().contains("blocked:\n  service-defaults \"web\""));
    // Still blocked on the next pass, with nothing recorded twice.
    r.turn().await;
    assert_eq!(r.status().history.len(), 1);
    // The other owner lets go: the entry is written and the status is clean again.
    rig.consul.foreign.lock().unwrap().clear();
    r.turn().await;
    let s = r.status();
    assert_eq!(s.result, "healed", "{s:#?}");
    assert!(s.blocked.is_empty() && s.foreign.is_empty());
    assert_eq!(rig.consul.get("web").as_deref(), Some("tcp"));
}

/// The delay a turn asks for before the next one.
fn delay(next: Next) -> Duration {
    match next {
        Next::Wait(at) => at - Instant::now(),
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_up_to_a_cap_and_a_success_resets_it() {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    rig.consul.down.store(true, Ordering::SeqCst);
    let c1 = rig.commit(1, &[("api", "http")]);
    for n in 0..12u32 {
        let plans = rig.plans();
        let d = delay(r.turn().await.next);
        assert_eq!(rig.plans(), plans + 1);
        assert_eq!(r.status().result, "failed");
        assert_eq!(r.status().reason, "Consul is unreachable");
        // Equal jitter: half the capped exponential delay, plus up to the other half.
        let cap = (Duration::from_secs(1) * 2u32.pow(n.min(16))).min(Duration::from_secs(300));
        assert!(
            d >= cap / 2 && d < cap,
            "failure {n}: {d:?} against {cap:?}"
        );
        // Woken early (an input changed, a watched object moved): no pass before the retry.
        tokio::time::advance(d / 2).await;
        r.turn().await;
        assert_eq!(rig.plans(), plans + 1);
        tokio::time::advance(d - d / 2).await;
    }
    assert_eq!(
        rig.metric("mesh_gitops_reconcile_passes_total{result=\"failed\"}"),
        12.0
    );
    assert!(!rig.shared.ready.load(Ordering::Relaxed));

    // Consul is back: the retry applies, and the next wait is the resync interval again.
    rig.consul.down.store(false, Ordering::SeqCst);
    let next = r.turn().await.next;
    assert_eq!(r.status().result, "applied");
    assert_eq!(r.status().applied_revision, c1);
    assert_eq!(delay(next), INTERVAL);
    assert!(rig.shared.ready.load(Ordering::Relaxed));

    // The next failure starts from the base delay again.
    rig.consul.down.store(true, Ordering::SeqCst);
    tokio::time::advance(INTERVAL).await;
    let d = delay(r.turn().await.next);
    assert!(
        d >= Duration::from_millis(500) && d < Duration::from_secs(1),
        "{d:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_newer_commit_stops_the_apply_at_a_step_boundary() {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    let c1 = rig.commit(1, &[("a", "tcp"), ("b", "tcp"), ("c", "tcp")]);
    rig.commits
        .add(&rev(2), &[("a", "http"), ("b", "http"), ("c", "http")]);
    let head = rig.head.clone();
    *rig.consul.on_write.lock().unwrap() = Some(Box::new(move |n| {
        if n == 1 {
            head.send_replace(Some(rev(2)));
        }
    }));
    let turn = r.turn().await;
    assert_eq!(turn.next, Next::Again);
    let s = r.status().clone();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("interrupted", c1.as_str())
    );
    assert_eq!(s.reason, "stopped after 1 write(s): a newer commit arrived");
    assert_eq!(rig.consul.entries.lock().unwrap().len(), 1);

    // The next turn applies the newer commit from where the stale one stopped.
    *rig.consul.on_write.lock().unwrap() = None;
    r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.applied_revision.as_str()),
        ("applied", rev(2).as_str())
    );
    for name in ["a", "b", "c"] {
        assert_eq!(rig.consul.get(name).as_deref(), Some("http"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_leadership_stops_the_apply_and_the_standby_writes_nothing() {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    let c1 = rig.commit(1, &[("a", "tcp"), ("b", "tcp"), ("c", "tcp")]);
    let leader = rig.leader.clone();
    *rig.consul.on_write.lock().unwrap() = Some(Box::new(move |n| {
        if n == 1 {
            leader.send_replace(false);
        }
    }));
    r.turn().await;
    let s = r.status().clone();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("interrupted", c1.as_str())
    );
    assert_eq!(
        s.reason,
        "stopped after 1 write(s): the leader lock was lost"
    );
    assert_eq!(rig.consul.entries.lock().unwrap().len(), 1);
    // The status is the leader's to write: it lost the lock, so it wrote nothing.
    assert_eq!(rig.record.writes.load(Ordering::SeqCst), 0);

    // Standing by: the watchers stop, and new commits and timers do nothing.
    let (plans, applies) = (rig.plans(), rig.applies());
    let turn = r.turn().await;
    assert_eq!(turn.watch, Some(Vec::new()));
    rig.commit(2, &[("a", "http")]);
    tokio::time::advance(INTERVAL).await;
    r.turn().await;
    assert_eq!((rig.plans(), rig.applies()), (plans, applies));
    assert_eq!(rig.record.writes.load(Ordering::SeqCst), 0);
    assert_eq!(rig.consul.entries.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_does_not_lead_never_applies() {
    let (rig, mut r) = rig(true);
    rig.commit(1, &[("api", "http")]);
    for _ in 0..3 {
        let turn = r.turn().await;
        assert_eq!(delay(turn.next), INTERVAL);
        assert_eq!(turn.watch, None);
        tokio::time::advance(INTERVAL).await;
    }
    assert_eq!((rig.plans(), rig.applies()), (0, 0));
    assert_eq!(rig.record.writes.load(Ordering::SeqCst), 0);
    assert!(rig.consul.entries.lock().unwrap().is_empty());
    assert_eq!(r.status().result, "");
    assert!(!rig.shared.leader.load(Ordering::Relaxed));
    // A standby is ready once the election holds a session.
    assert!(!rig.shared.ready.load(Ordering::Relaxed));
    rig.session.store(true, Ordering::Relaxed);
    r.turn().await;
    assert!(rig.shared.ready.load(Ordering::Relaxed));

    // Leading, it takes over the last leader's record and applies.
    *rig.record.stored.lock().unwrap() = Some(Status {
        applied_revision: rev(9),
        ..Status::default()
    });
    rig.leader.send_replace(true);
    r.turn().await;
    assert_eq!(r.status().result, "applied");
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
}

#[derive(Default)]
struct Watched(Vec<Vec<String>>);

impl mesh_reconcile::Watches for Watched {
    fn set(&mut self, paths: &[String]) {
        self.0.push(paths.to_vec());
    }
}

#[derive(Clone, Copy, Debug)]
enum Wake {
    Drift,
    Leader,
    Timer,
}

/// Runs the loop until drift is healed, woken by `wake`; returns the healing event (revision,
/// result, reason) and how long after the drift it came.
async fn heal_woken_by(wake: Wake) -> ((String, String, String), Duration) {
    let (rig, mut r) = rig(true);
    rig.leader.send_replace(true);
    rig.commit(1, &[("api", "http")]);
    let (drift_tx, mut drift_rx) = mpsc::channel(8);
    let mut watched = Watched::default();
    let until = |result: &'static str| {
        let record = rig.record.clone();
        async move {
            while record.result() != result {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let script = async {
        until("applied").await;
        rig.consul.tamper("api", "grpc");
        let drifted = Instant::now();
        match wake {
            Wake::Drift => drift_tx
                .send("/v1/config/service-defaults".into())
                .await
                .unwrap(),
            Wake::Leader => {
                rig.leader.send_replace(true);
            }
            Wake::Timer => {}
        }
        until("healed").await;
        let took = drifted.elapsed();
        rig.stop.send_replace(true);
        took
    };
    let ((), took) = tokio::join!(drive(&mut r, &mut watched, &mut drift_rx), script);
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(watched.0.last(), Some(&Vec::new()), "{:?}", watched.0);
    let s = r.status();
    (
        (s.revision.clone(), s.result.clone(), s.reason.clone()),
        took,
    )
}

#[tokio::test(start_paused = true)]
async fn a_pass_is_the_same_whatever_woke_it() {
    let (by_drift, soon) = heal_woken_by(Wake::Drift).await;
    assert!(soon < Duration::from_secs(1), "{soon:?}");
    let (by_leader, soon) = heal_woken_by(Wake::Leader).await;
    assert!(soon < Duration::from_secs(1), "{soon:?}");
    let (by_timer, late) = heal_woken_by(Wake::Timer).await;
    assert!(late >= INTERVAL - Duration::from_secs(1), "{late:?}");
    assert_eq!(by_drift, by_leader);
    assert_eq!(by_drift, by_timer);
    assert_eq!(by_drift.1, "healed");
}

#[tokio::test(start_paused = true)]
async fn with_trusted_keys_only_commits_signed_by_one_are_applied() {
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    let alice = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let mallory = PrivateKey::from(Ed25519Keypair::from_seed(&[2; 32]));
    let line = format!(
        "alice@example.com {}\n",
        alice.public_key().to_openssh().unwrap()
    );
    let (rig, mut r) = rig_trusting(true, Some(TrustedKeys::parse(&line).unwrap()));
    rig.leader.send_replace(true);
    let sign = |key: &PrivateKey, rev: &str| {
        let data = format!("tree of {rev}").into_bytes();
        let signature = key
            .sign("git", ssh_key::HashAlg::Sha512, &data)
            .unwrap()
            .to_pem(ssh_key::LineEnding::LF)
            .unwrap()
            .into_bytes();
        rig.commits
            .signed
            .lock()
            .unwrap()
            .insert(rev.to_owned(), Signed { signature, data });
    };

    rig.commit(1, &[("api", "http")]);
    r.turn().await;
    assert_eq!(r.status().result, "refused");
    assert_eq!(
        r.status().reason,
        "the commit is not signed (--require-signed)"
    );

    sign(&mallory, &rev(2));
    rig.commit(2, &[("api", "http")]);
    r.turn().await;
    assert_eq!(r.status().result, "refused");
    assert_eq!(
        r.status().reason,
        "signature: signed by a key that is not trusted"
    );
    assert_eq!(rig.applies(), 0);

    sign(&alice, &rev(3));
    let c3 = rig.commit(3, &[("api", "http")]);
    r.turn().await;
    assert_eq!(r.status().result, "applied");
    assert_eq!(r.status().applied_revision, c3);
    assert_eq!(rig.metric("mesh_gitops_gate_failures_total"), 2.0);
}

/// A key file with an SSH line and OpenPGP blocks (a maintainer's gpg key, and an RSA key as
/// GitHub signs its web commits with): each kind's commits are applied, the others refused
/// with the reason.
#[tokio::test(start_paused = true)]
async fn with_ssh_and_openpgp_keys_trusted_each_kind_is_verified() {
    use pgp_keys::{armored, expiring, fingerprint, key, sign, Kind, CREATED, DAY};
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    let alice = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let maintainer = key(1, Kind::Ed25519Legacy);
    let github = key(2, Kind::Rsa(2048));
    let stranger = key(3, Kind::Ed25519Legacy);
    let retired = key(4, Kind::Ed25519Legacy);
    let file = format!(
        "alice@example.com {}\n{}{}{}",
        alice.public_key().to_openssh().unwrap(),
        armored(&maintainer.to_public_key()),
        armored(&github.to_public_key()),
        armored(&expiring(&retired, 30)),
    );
    let (rig, mut r) = rig_trusting(true, Some(TrustedKeys::parse(&file).unwrap()));
    rig.leader.send_replace(true);
    let put = |rev: &str, signature: String, data: &[u8]| {
        rig.commits.signed.lock().unwrap().insert(
            rev.to_owned(),
            Signed {
                signature: signature.into_bytes(),
                data: data.to_vec(),
            },
        );
    };
    let data = |n: u8| format!("tree of {}", rev(n)).into_bytes();
    let at = CREATED + DAY;
    let refused = |r: &Loop| {
        assert_eq!(r.status().result, "refused");
        r.status().reason.clone()
    };

    put(&rev(1), sign(&stranger, at, &data(1)), &data(1));
    rig.commit(1, &[("api", "http")]);
    r.turn().await;
    assert_eq!(
        refused(&r),
        format!(
            "signature: signed by the OpenPGP key {}, which is not trusted",
            fingerprint(&stranger)
        )
    );

    // The maintainer signed other bytes than the commit's.
    put(&rev(2), sign(&maintainer, at, b"another tree"), &data(2));
    rig.commit(2, &[("api", "http")]);
    r.turn().await;
    assert_eq!(
        refused(&r),
        "signature: the signature does not verify: the commit was altered or the signature forged"
    );

    put(
        &rev(3),
        sign(&retired, CREATED + 31 * DAY, &data(3)),
        &data(3),
    );
    rig.commit(3, &[("api", "http")]);
    r.turn().await;
    assert!(
        refused(&r).starts_with(&format!(
            "signature: the OpenPGP key {} had expired when the commit was signed",
            fingerprint(&retired)
        )),
        "{}",
        r.status().reason
    );
    assert_eq!(rig.applies(), 0);

    put(&rev(4), sign(&github, at, &data(4)), &data(4));
    let c4 = rig.commit(4, &[("api", "http")]);
    r.turn().await;
    assert_eq!(r.status().result, "applied", "{}", r.status().reason);
    assert_eq!(r.status().applied_revision, c4);

    // The key that expired still vouches for what it signed while it was valid.
    put(
        &rev(5),
        sign(&retired, CREATED + 29 * DAY, &data(5)),
        &data(5),
    );
    let c5 = rig.commit(5, &[("api", "http"), ("web", "http")]);
    r.turn().await;
    assert_eq!(r.status().applied_revision, c5, "{}", r.status().reason);

    let ssh = alice
        .sign("git", ssh_key::HashAlg::Sha512, &data(6))
        .unwrap()
        .to_pem(ssh_key::LineEnding::LF)
        .unwrap();
    put(&rev(6), ssh, &data(6));
    let c6 = rig.commit(6, &[("api", "http")]);
    r.turn().await;
    assert_eq!(r.status().applied_revision, c6, "{}", r.status().reason);
    assert_eq!(rig.metric("mesh_gitops_gate_failures_total"), 3.0);
}

#[tokio::test(start_paused = true)]
async fn while_suspended_nothing_is_applied_or_healed_and_resume_catches_up() {
    let (rig, mut r, c1) = applied_once(true).await;
    *rig.record.suspended.lock().unwrap() = Some(Suspension {
        by: "ana".into(),
        reason: "incident 42".into(),
        time: String::new(),
    });
    rig.consul.tamper("api", "grpc");
    let c2 = rig.commit(2, &[("api", "http"), ("web", "http")]);
    for _ in 0..3 {
        r.turn().await;
    }
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("suspended", c2.as_str())
    );
    assert_eq!(
        s.reason,
        "suspended by ana: incident 42; nothing is applied or healed until `mesh-gitops resume`; pending: 2 change(s): ~ service-defaults \"api\", ~ service-defaults \"web\""
    );
    assert_eq!(s.applied_revision, c1);
    assert_eq!(rig.record.result(), "suspended");
    assert_eq!(rig.consul.get("api").as_deref(), Some("grpc"), "not healed");
    assert_eq!(
        rig.consul.get("web").as_deref(),
        Some("tcp"),
        "not promoted"
    );
    assert_eq!(rig.applies(), 1, "nothing applied");
    assert_eq!(
        rig.metric("mesh_gitops_reconcile_passes_total{result=\"suspended\"}"),
        3.0
    );

    // Resumed: the new commit is gated and applied, the drift with it.
    *rig.record.suspended.lock().unwrap() = None;
    r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("applied", c2.as_str())
    );
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(rig.consul.get("web").as_deref(), Some("http"));
}

#[tokio::test(start_paused = true)]
async fn heal_only_keeps_the_applied_revision_heals_drift_and_holds_new_commits() {
    let (rig, mut r) = rig_with(true, None, true);
    // A previous run applied revision 1; this one starts with heal-only.
    rig.commits.add(&rev(1), &[("api", "http"), ("web", "tcp")]);
    *rig.record.stored.lock().unwrap() = Some(Status {
        applied_revision: rev(1),
        result: "applied".into(),
        ..Status::default()
    });
    rig.consul.entries.lock().unwrap().clear();
    rig.leader.send_replace(true);
    let c2 = rig.commit(2, &[("api", "grpc")]);
    r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("healed", rev(1).as_str())
    );
    assert!(
        s.history.iter().any(|e| e.result == "held"
            && e.revision == c2
            && e.reason
                == format!(
                    "heal-only: not promoted; Consul is kept at {}",
                    &rev(1)[..12]
                )),
        "{:#?}",
        s.history
    );
    assert_eq!(rig.consul.get("api").as_deref(), Some("http"));
    assert_eq!(rig.consul.get("web").as_deref(), Some("tcp"));

    rig.consul.tamper("web", "grpc");
    r.turn().await;
    assert_eq!(r.status().result, "healed");
    assert_eq!(rig.consul.get("web").as_deref(), Some("tcp"));
    assert_eq!(
        rig.consul.get("api").as_deref(),
        Some("http"),
        "revision 2 never applied"
    );
}

#[tokio::test(start_paused = true)]
async fn heal_only_with_nothing_applied_holds_and_writes_nothing() {
    let (rig, mut r) = rig_with(true, None, true);
    rig.leader.send_replace(true);
    let c1 = rig.commit(1, &[("api", "http")]);
    r.turn().await;
    let s = r.status();
    assert_eq!(
        (s.result.as_str(), s.revision.as_str()),
        ("held", c1.as_str())
    );
    assert_eq!(s.reason, "heal-only: no revision has been applied to keep");
    assert_eq!((rig.plans(), rig.applies()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn applied_refused_healed_and_failed_passes_are_notified_once_each() {
    let (rig, mut r, c1) = applied_once(true).await;
    assert_eq!(rig.notices.configured.load(Ordering::SeqCst), 1);
    let n = rig.notices.sent.lock().unwrap()[0].clone();
    assert_eq!(
        (n.owner.as_str(), n.replica.as_str(), n.reason.as_str()),
        (
            "team",
            "alpha",
            "2 write(s): 2 change(s): + service-defaults \"api\", + service-defaults \"web\""
        )
    );
    // In sync: nothing to tell.
    r.turn().await;
    let c2 = rig.commit(2, &[("forbidden", "tcp")]);
    r.turn().await;
    r.turn().await;
    rig.consul.tamper("api", "grpc");
    r.turn().await;
    rig.consul.down.store(true, Ordering::SeqCst);
    rig.consul.tamper("api", "tcp");
    for _ in 0..3 {
        let d = delay(r.turn().await.next);
        tokio::time::advance(d).await;
    }
    let s = |a: &str, b: &String| (a.to_owned(), b.clone());
    assert_eq!(
        rig.notices.results(),
        [
            s("applied", &c1),
            s("refused", &c2),
            s("healed", &c1),
            s("failed", &c1)
        ]
    );
    let refused = rig.notices.sent.lock().unwrap()[1].reason.clone();
    assert!(
        refused.starts_with("check fails: \"forbidden\" is declared"),
        "{refused}"
    );
}
