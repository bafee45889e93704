//! `mesh-gitops`: a Consul service mesh, declared in git, validated, simulated and applied.
//!
//! Results go to stdout, diagnostics and logs to stderr. Exit codes are
//! one table, in `exit`.

mod apply;
mod completions;
mod exit;
mod explain;
mod gate;
mod import;
mod live;
mod logs;
mod output;
mod progress;
mod reconcile;
mod report;
mod rollout;
mod saved;
mod serve;
mod show;
mod simulate;
mod suspend;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use exit::Exit;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `--version`: the package's version and the git revision it was built from (`unknown` when
/// built from a source tarball).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("MESH_GITOPS_REVISION"),
    ")"
);

#[derive(Parser, Debug)]
#[command(name = "mesh-gitops", version = VERSION, about, long_about = None)]
#[command(after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load and check every file; print every problem as `path:line:col: error[CODE]: message`.
    Validate(ValidateArgs),
    /// Print the normalized desired state.
    Show(ShowArgs),
    /// What must change in Consul for it to match the repository (0 none, 2 changes, 4 blocked).
    Plan(PlanArgs),
    /// Validate, check (with the simulation), and apply the plan with CAS, in a safe order.
    Apply(ApplyArgs),
    /// The PR gate: validate, analyse and simulate; with a base, what the change opens and closes.
    Check(CheckArgs),
    /// Write a repository from a running Consul: config entries, ACL objects (secrets as
    /// SecretIDFrom placeholders), the CA configuration; `plan` on it says no changes.
    Import(import::ImportArgs),
    /// Run the embedded Consul-compatible control plane.
    Serve(serve::ServeArgs),
    /// A picture of who can reach whom (and, with --base, what the change opened and closed).
    Graph(GraphArgs),
    /// Run the mesh in the deterministic simulator: real mTLS, intentions, probes, faults, and
    /// with --base the rollout in the planner's order (0 clean, 3 violations).
    Simulate(SimulateArgs),
    /// Keep Consul at the head of a git branch: fetch, gate, apply, heal drift; one leader.
    Reconcile(Box<reconcile::ReconcileArgs>),
    /// Stop every reconcile replica of an owner from applying or healing (a flag in Consul KV).
    Suspend(suspend::SuspendArgs),
    /// Let the reconcile replicas of an owner apply and heal again.
    Resume(suspend::ResumeArgs),
    /// The reconciler's last result and history, from Consul KV (3 if refused or failed).
    Status(reconcile::StatusArgs),
    /// The long explanation of a diagnostic code, with an example and the fix.
    Explain(explain::ExplainArgs),
    /// Shell completions (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(completions::CompletionsArgs),
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Start from this state (a directory or a git revision) and roll out to DIR.
    #[arg(long, value_name = "REV|DIR")]
    base: Option<String>,
    #[command(flatten)]
    sim: simulate::SimArgs,
    /// Output format on stdout [default: text, unless --output is given].
    #[arg(long, value_enum)]
    format: Option<SimFormat>,
    /// Also write FORMAT to PATH (repeatable; without PATH, or with `-`, to stdout), from the
    /// same run.
    #[arg(long, value_name = "FORMAT[=PATH]", value_parser = output::parse::<SimFormat>)]
    output: Vec<output::Output<SimFormat>>,
    /// Simulate nothing: join the JSON reports of a sweep split across machines (each a
    /// `simulate --seed-range A..B --format json`) into the report of one run of all their seeds
    /// (JSON; 3 if a seed failed).
    #[arg(long, value_name = "REPORT.json", num_args = 1.., conflicts_with_all = ["base", "seed_range", "seeds", "faults"])]
    combine: Vec<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SimFormat {
    Text,
    Json,
    Markdown,
}

#[derive(clap::Args, Debug)]
struct RepoArgs {
    /// The repository's root directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// A Nomad job variable, `name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

#[derive(clap::Args, Debug)]
struct ValidateArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

#[derive(clap::Args, Debug)]
struct ShowArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Output format of the desired state.
    #[arg(long, value_enum, default_value_t = StateFormat::Json)]
    format: StateFormat,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The state to compare with: a directory, or a git revision of the repository holding DIR
    /// (read from the object database; no checkout). Default: the merge base of HEAD and
    /// origin/HEAD when DIR is in a git repository that has origin/HEAD, otherwise none.
    #[arg(long, value_name = "REV|DIR")]
    base: Option<String>,
    /// Compare with nothing, even in a git repository with origin/HEAD.
    #[arg(long, conflicts_with = "base")]
    no_base: bool,
    /// Check against the live mesh in Consul at URL (read only; the token from
    /// CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE): the repository merged with every config
    /// entry and Connect service Consul holds, and what it opens and closes since.
    #[arg(long, value_name = "URL", conflicts_with_all = ["base", "no_base"])]
    consul: Option<String>,
    /// Output format of the result on stdout [default: text, unless --output is given].
    #[arg(long, value_enum)]
    format: Option<CheckFormat>,
    /// Also write FORMAT to PATH (repeatable; without PATH, or with `-`, to stdout), from the
    /// same run: `--output sarif=mesh.sarif --output html=report.html`.
    #[arg(long, value_name = "FORMAT[=PATH]", value_parser = output::parse::<CheckFormat>)]
    output: Vec<output::Output<CheckFormat>>,
    /// Skip the simulation (static analysis only).
    #[arg(long)]
    no_sim: bool,
    #[command(flatten)]
    sim: simulate::SimArgs,
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    target: apply::TargetArgs,
    /// Output format on stdout [default: text, unless --output is given].
    #[arg(long, value_enum)]
    format: Option<ReportFormat>,
    /// Also write FORMAT to PATH (repeatable; without PATH, or with `-`, to stdout), from the
    /// same plan.
    #[arg(long, value_name = "FORMAT[=PATH]", value_parser = output::parse::<ReportFormat>)]
    output: Vec<output::Output<ReportFormat>>,
    /// Also save the plan to FILE, for `apply --plan FILE` to apply exactly it: versioned JSON
    /// with the steps and their CAS indexes, a hash of the live state, the repository's
    /// revision and digest, and a checksum; never a secret.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Simulate the rollout from the live state: Consul's config entries as the base, the
    /// plan's own steps in apply's order, traffic on every declared upstream; report transient
    /// breaks and openings per step (exit 3 when apply would refuse it).
    #[arg(long)]
    simulate: bool,
}

#[derive(clap::Args, Debug)]
struct ApplyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    target: apply::TargetArgs,
    /// Skip the gate's check and simulation: apply even if `check` fails (its errors are
    /// printed first), and do not simulate the mesh.
    #[arg(long)]
    skip_check: bool,
    /// Output format: the progress lines (text), or one object with the gate's result and
    /// every step (json).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Apply exactly the plan `plan --out FILE` saved, or nothing: refused (exit 5) when Consul
    /// or the repository changed since, refused (exit 1) when the file was altered. Its options
    /// (--adopt, --allow-empty, --max-deletes) come from the file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["adopt", "allow_empty", "max_deletes"])]
    plan: Option<PathBuf>,
    /// Apply even when the rollout simulated from the live state breaks, for a while, an edge
    /// allowed now and after it (the breaks are still reported).
    #[arg(long)]
    allow_transient: bool,
}

#[derive(clap::Args, Debug)]
struct GraphArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The state to compare with: a directory or a git revision.
    #[arg(long, value_name = "REV|DIR")]
    base: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum CheckFormat {
    Text,
    Json,
    Markdown,
    Sarif,
    Junit,
    Github,
    Html,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StateFormat {
    Json,
    Yaml,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got \"{s}\""))
}

impl RepoArgs {
    fn options(&self) -> mesh_loader::LoadOptions {
        mesh_loader::LoadOptions {
            nomad_vars: self.vars.iter().cloned().collect::<BTreeMap<_, _>>(),
        }
    }

    fn load(&self) -> mesh_loader::Loaded {
        mesh_loader::load_dir(&self.dir, &self.options())
    }

    /// The repository and `base` loaded and analysed; when the repository does not load, its
    /// diagnostics are printed and the exit code is returned instead.
    fn check(
        &self,
        base: Option<&mesh_check::BaseSpec>,
    ) -> Result<Result<mesh_check::CheckResult, ExitCode>> {
        Ok(match mesh_check::run(&self.dir, base, &self.options())? {
            Ok(r) => Ok(r),
            Err(loaded) => {
                report::diagnostics(&loaded, ReportFormat::Text)?;
                Err(Exit::Error.into())
            }
        })
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap exits 2 on a usage error, which here means "the plan has changes": a script
        // running `plan` must never read a typo as a pending change. `--help` and
        // `--version` still exit 0.
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Error
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`mesh-gitops show | head`) is not an error.
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return Exit::Ok.into();
            }
            eprintln!("mesh-gitops: {err:#}");
            Exit::Error.into()
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // `reconcile` chooses its log format itself.
    if !matches!(cli.command, Command::Reconcile(_)) {
        logs::init(false);
    }
    match cli.command {
        Command::Validate(args) => {
            let loaded = args.repo.load();
            report::diagnostics(&loaded, args.format)?;
            Ok(exit_for(&loaded))
        }
        Command::Check(args) => check_command(args),
        Command::Simulate(args) => simulate_command(args),
        Command::Plan(args) => plan_command(args),
        Command::Apply(args) => apply_command(args),
        Command::Graph(args) => graph_command(args),
        Command::Import(args) => import::run(&args),
        Command::Serve(args) => {
            serve::run(args)?;
            Ok(Exit::Ok.into())
        }
        Command::Reconcile(args) => {
            reconcile::run(*args)?;
            Ok(Exit::Ok.into())
        }
        Command::Status(args) => reconcile::print_status(args),
        Command::Suspend(args) => suspend::suspend(&args),
        Command::Resume(args) => suspend::resume(&args),
        Command::Show(args) => show_command(args),
        Command::Explain(args) => explain::run(&args),
        Command::Completions(args) => {
            completions::run(&args);
            Ok(Exit::Ok.into())
        }
    }
}

fn check_command(args: CheckArgs) -> Result<ExitCode> {
    let outputs = output::destinations(args.format, &args.output, CheckFormat::Text)?;
    let base = match (&args.base, args.no_base || args.consul.is_some()) {
        (Some(spec), _) => Some(mesh_check::BaseSpec::given(spec)),
        (None, true) => None,
        (None, false) => match mesh_check::default_base(&args.repo.dir) {
            mesh_check::DefaultBase::MergeBase(spec) => {
                eprintln!(
                    "mesh-gitops: base: {} (--base REV chooses another, --no-base none)",
                    spec.label
                );
                Some(spec)
            }
            mesh_check::DefaultBase::None(why) => {
                eprintln!("mesh-gitops: base: none ({why})");
                None
            }
        },
    };
    let checked = match &args.consul {
        Some(url) => live::check(&args.repo, url)?,
        None => args.repo.check(base.as_ref())?,
    };
    let mut result = match checked {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !args.no_sim {
        result.simulation = Some(simulate::sweep(
            &result.head.state,
            result.base.as_ref().map(|b| &b.loaded.state),
            &args.repo.dir,
            &args.sim,
        )?);
    }
    // Load warnings go to stderr; the result goes to stdout.
    report::diagnostics(&result.head, ReportFormat::Text)?;
    output::write_all(&outputs, |format| match format {
        CheckFormat::Text => mesh_report::check::text::render(&result),
        CheckFormat::Json => mesh_report::check::json::render(&result),
        CheckFormat::Markdown => mesh_report::check::markdown::render(&result),
        CheckFormat::Sarif => mesh_report::check::sarif::render(&result),
        CheckFormat::Junit => mesh_report::check::junit::render(&result),
        CheckFormat::Github => mesh_report::check::github::render(&result),
        CheckFormat::Html => mesh_report::check::html::render(&result),
    })?;
    Ok(if result.failed() {
        Exit::Violation
    } else {
        Exit::Ok
    }
    .into())
}

fn simulate_command(args: SimulateArgs) -> Result<ExitCode> {
    if !args.combine.is_empty() {
        return simulate::combine(&args.combine, args.format, &args.output);
    }
    let outputs = output::destinations(args.format, &args.output, SimFormat::Text)?;
    let base = args.base.as_deref().map(mesh_check::BaseSpec::given);
    let result = match args.repo.check(base.as_ref())? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    report::diagnostics(&result.head, ReportFormat::Text)?;
    let sim = simulate::sweep(
        &result.head.state,
        result.base.as_ref().map(|b| &b.loaded.state),
        &args.repo.dir,
        &args.sim,
    )?;
    output::write_all(&outputs, |format| match format {
        SimFormat::Text => mesh_report::simulation::text::render(&sim),
        SimFormat::Json => mesh_report::simulation::json::render(&sim),
        SimFormat::Markdown => mesh_report::simulation::markdown::render(&sim),
    })?;
    Ok(if sim.failed() {
        Exit::Violation
    } else {
        Exit::Ok
    }
    .into())
}

fn plan_command(args: PlanArgs) -> Result<ExitCode> {
    let outputs = output::destinations(args.format, &args.output, ReportFormat::Text)?;
    let loaded = args.repo.load();
    report::diagnostics(&loaded, ReportFormat::Text)?;
    if loaded.has_errors() {
        return Ok(Exit::Error.into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let revision = args
        .out
        .as_ref()
        .and_then(|_| mesh_check::head_revision(&args.repo.dir));
    let label = args.repo.dir.display().to_string();
    let simulate = args.simulate.then_some(label.as_str());
    let reviewed = runtime.block_on(async {
        let target = apply::connect(&args.target, loaded.state.settings.acl).await?;
        apply::plan_for_review(&loaded, &target, &args.target, revision, simulate).await
    })?;
    let plan = &reviewed.plan;
    output::write_all(&outputs, |format| match format {
        ReportFormat::Text => mesh_report::plan::text::render(plan),
        ReportFormat::Json => mesh_report::plan::json::render(plan),
    })?;
    eprintln!("{}", reviewed.stats);
    if let Some(path) = &args.out {
        saved::write(path, &reviewed.saved)?;
    }
    let Some(rollout) = reviewed.rollout else {
        return Ok(Exit::from(plan.outcome()).into());
    };
    let rollout = rollout?;
    let text = rollout::report(rollout.as_ref());
    // Beside a text plan on stdout; otherwise on stderr, so stdout stays one format.
    if outputs
        .iter()
        .any(|o| o.path.is_none() && o.format == ReportFormat::Text)
    {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
    if rollout.is_some_and(|r| r.refusal(false).is_some()) {
        return Ok(Exit::Violation.into());
    }
    Ok(Exit::from(plan.outcome()).into())
}

fn apply_command(args: ApplyArgs) -> Result<ExitCode> {
    // An altered or foreign plan is refused before anything else is done.
    let saved = args.plan.as_deref().map(saved::read).transpose()?;
    let loaded = args.repo.load();
    report::diagnostics(&loaded, ReportFormat::Text)?;
    // The gate `reconcile` shares: it validates, the analysis `check` runs passes, and
    // the simulation finds no violation.
    let dir = args.repo.dir.display().to_string();
    let gate = mesh_check::gate(&loaded, &dir, !args.skip_check);
    if args.format == ReportFormat::Json {
        let quiet = |_: String| {};
        let vet = rollout::vet(
            &loaded,
            &dir,
            !args.skip_check,
            args.allow_transient,
            &quiet,
        );
        return apply::apply_json(
            &loaded,
            &gate,
            &args.target,
            saved.as_ref(),
            &vet,
            args.skip_check,
        );
    }
    match gate {
        Ok(pass) => println!("{}", mesh_report::gate::text::summary(&pass)),
        Err(failure) => {
            if !gate::print_failure(&failure, &loaded, args.skip_check) {
                return Ok(Exit::Error.into());
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if let (Some(path), Some(saved)) = (&args.plan, &saved) {
        writeln!(out, "{}", saved::describe(path, saved))?;
    }
    let written = runtime.block_on(async {
        let target = apply::connect(&args.target, loaded.state.settings.acl).await?;
        if let Some(n) = apply::state_dir_note(&target, &args.target.state_dir) {
            writeln!(out, "applying to {} {n}", target.client.address())?;
        } else {
            writeln!(out, "applying to {}", target.client.address())?;
        }
        let mut progress = progress::Progress::new("applying", "step(s)");
        let say = |line: String| println!("{line}");
        let vet = rollout::vet(&loaded, &dir, !args.skip_check, args.allow_transient, &say);
        apply::apply_lines(
            &loaded,
            &target,
            &args.target,
            saved.as_ref(),
            &vet,
            &mut out,
            &|| false,
            Some(&mut progress),
        )
        .await
    });
    let written = match written {
        Ok(w) => w,
        Err(e) if saved::is_stale(&e) => {
            eprintln!("mesh-gitops: {e:#}\n{}", saved::STALE_HELP);
            return Ok(Exit::Stale.into());
        }
        Err(e) => return Err(e),
    };
    writeln!(out, "Apply complete: {} change(s).", written.writes)?;
    if written.blocked > 0 {
        writeln!(
            out,
            "Blocked: {} declared object(s) left as they are (marked \"!\" above); Consul does not match the repository.",
            written.blocked
        )?;
        return Ok(Exit::Blocked.into());
    }
    Ok(Exit::Ok.into())
}

fn graph_command(args: GraphArgs) -> Result<ExitCode> {
    let base = args.base.as_deref().map(mesh_check::BaseSpec::given);
    let result = match args.repo.check(base.as_ref())? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let out = match args.format {
        GraphFormat::Dot => mesh_report::graph::dot::render(&result),
        GraphFormat::Mermaid => mesh_report::graph::mermaid::render(&result),
        GraphFormat::Svg => mesh_report::graph::svg::render(&result),
    };
    use std::io::Write as _;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(Exit::Ok.into())
}

fn show_command(args: ShowArgs) -> Result<ExitCode> {
    let loaded = args.repo.load();
    report::diagnostics(&loaded, ReportFormat::Text)?;
    if loaded.has_errors() {
        return Ok(Exit::Error.into());
    }
    show::print(&loaded, args.format)?;
    Ok(Exit::Ok.into())
}

fn exit_for(loaded: &mesh_loader::Loaded) -> ExitCode {
    if loaded.has_errors() {
        Exit::Error
    } else {
        Exit::Ok
    }
    .into()
}
