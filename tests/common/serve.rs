//! The binary running in the background: `mesh-gitops serve` on a free loopback port (and the
//! reconciler, which announces its address the same way), killed when dropped.

use super::run::{mesh_gitops, Cmd};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// A background process of the binary, killed on drop; its stderr is collected into a file.
pub struct Proc {
    pub child: Child,
    /// `host:port` from the line announcing it.
    pub addr: String,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd`, waits for the stderr line containing `marker` and takes the address after
    /// it, then keeps draining stderr into `log` so the process never blocks on a full pipe.
    pub fn spawn(cmd: &Cmd, marker: &str, log: PathBuf) -> Proc {
        let mut child = cmd
            .command()
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut seen = String::new();
        let mut line = String::new();
        while stderr.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            seen.push_str(&line);
            if let Some(a) = line.split(marker).nth(1) {
                addr = Some(a.trim().to_owned());
                break;
            }
            line.clear();
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no address after {marker:?} announced; stderr:\n{seen}");
        };
        let path = log.clone();
        std::thread::spawn(move || {
            let mut all = seen;
            let mut l = String::new();
            while stderr.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
                all.push_str(&l);
                l.clear();
                let _ = std::fs::write(&path, &all);
            }
        });
        Proc { child, addr, log }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and reaped: no chance to flush or release anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The line `serve` announces its address with.
const SERVE_MARKER: &str = "control plane listening on http://";

/// How to start `mesh-gitops serve`.
pub struct ServeOpts {
    /// `--listen`; a free loopback port unless a test restarts a server on its old address.
    pub listen: String,
    /// Keep the ACL bootstrap token in `<state>/bootstrap-token` and hand it back.
    pub bootstrap_token: bool,
    /// More flags.
    pub extra: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where stderr is collected; `<state>/serve.log` when unset.
    pub log: Option<PathBuf>,
}

impl Default for ServeOpts {
    fn default() -> Self {
        ServeOpts {
            listen: "127.0.0.1:0".into(),
            bootstrap_token: false,
            extra: Vec::new(),
            env: Vec::new(),
            log: None,
        }
    }
}

/// A running `serve`, with the ACL bootstrap token when it keeps one.
pub struct Serve {
    pub proc: Proc,
    pub token: Option<String>,
}

impl Serve {
    /// `mesh-gitops serve` on the state directory `state`, once it listens.
    pub fn start(state: &Path, opts: ServeOpts) -> Serve {
        let token_file = state.join("bootstrap-token");
        let mut cmd = mesh_gitops(&["serve", "--listen", &opts.listen, "--state-dir"])
            .arg(state)
            .args(&opts.extra);
        if opts.bootstrap_token {
            cmd = cmd.arg("--bootstrap-token-file").arg(&token_file);
        }
        for (k, v) in &opts.env {
            cmd = cmd.env(k, v);
        }
        let log = opts.log.unwrap_or_else(|| state.join("serve.log"));
        let proc = Proc::spawn(&cmd, SERVE_MARKER, log);
        let token = opts
            .bootstrap_token
            .then(|| std::fs::read_to_string(&token_file).ok())
            .flatten()
            .map(|t| t.trim().to_owned());
        Serve { proc, token }
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        self.proc.url()
    }

    /// A client that sends the bootstrap token, when there is one.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = &self.token {
            headers.insert("X-Consul-Token", t.parse().unwrap());
        }
        reqwest::blocking::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// The binary pointed at this server (`CONSUL_HTTP_ADDR`, and the token when there is one).
    pub fn mesh_gitops<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        let cmd = mesh_gitops(args).env("CONSUL_HTTP_ADDR", &self.url());
        match &self.token {
            Some(t) => cmd.env("CONSUL_HTTP_TOKEN", t),
            None => cmd,
        }
    }
}
