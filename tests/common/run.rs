//! Running the `mesh-gitops` binary: a builder for its arguments, environment, working directory
//! and standard input, and the exit code and output of the run.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Variables a developer's shell may set that would point a test at a real Consul or change
/// the simulation's seed; every run starts without them.
const HERMETIC: &[&str] = &[
    "CONSUL_HTTP_ADDR",
    "CONSUL_HTTP_TOKEN",
    "MESH_SIM_SEED",
    "RUST_LOG",
];

/// `mesh-gitops` with `args`; add more with the builder's methods, then [`Cmd::run`].
pub fn mesh_gitops<S: AsRef<str>>(args: &[S]) -> Cmd {
    Cmd {
        args: args.iter().map(|a| a.as_ref().into()).collect(),
        env: Vec::new(),
        cwd: None,
        stdin: None,
    }
}

/// One invocation of the binary, not yet run.
#[derive(Clone, Debug)]
pub struct Cmd {
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().into()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// The process to spawn, for tests that run it in the background; standard input is
    /// not connected.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mesh-gitops"));
        c.args(&self.args);
        for k in HERMETIC {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            c.current_dir(dir);
        }
        c
    }

    /// Runs to completion.
    pub fn run(&self) -> Run {
        let mut c = self.command();
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("the binary runs");
        // Written from another thread: a child that prints before it reads cannot block us.
        let writer = self.stdin.clone().map(|input| {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            std::thread::spawn(move || {
                // A child that exits without reading everything closes the pipe; not our error.
                let _ = pipe.write_all(&input);
            })
        });
        let out = child.wait_with_output().expect("the binary runs");
        if let Some(w) = writer {
            w.join().expect("the stdin writer");
        }
        Run {
            args: self.args.clone(),
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout)
                .unwrap_or_else(|e| panic!("{}: stdout is not UTF-8: {e}", describe(&self.args))),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run left: its exit code (none when a signal ended it) and its output. Standard output
/// must be UTF-8; standard error is read lossily, as a terminal would show it.
#[derive(Debug)]
pub struct Run {
    args: Vec<OsString>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fails, showing the command and both outputs, unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{}: exit {:?}, expected {code}\n{}",
            describe(&self.args),
            self.code,
            self.output()
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Standard output parsed as JSON; fails with both outputs when it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON: {e}\n{}",
                describe(&self.args),
                self.output()
            )
        })
    }

    /// Both outputs, labelled, for a failure message.
    pub fn output(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

fn describe(args: &[OsString]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
    format!("mesh-gitops {}", args.join(" "))
}
