//! The git source: a bare cache repository fetched from the remote (https, ssh, or a local
//! path) with git2, and each commit's files read from the object database, without a checkout.
//!
//! Credentials come from the environment or files and go straight to libgit2; they are never
//! logged, and the URL is shown with any user-info replaced (`https://***@host/...`).

use mesh_loader::RepoFile;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the loop's commits come from. Every method may block (git, disk, network); the loop
/// calls them off the async workers.
pub trait Source: Send + Sync + 'static {
    /// The source for logs and the status, without credentials.
    fn shown(&self) -> String;
    /// The branch followed (before the first fetch of a source followed at its default branch,
    /// a description of that).
    fn branch(&self) -> &str;
    /// Fetches the branch; returns the ID of the commit it points at.
    fn fetch(&self) -> Result<String, SourceError>;
    /// A fetched commit's files (under the repository's root) and summary line.
    fn read(&self, rev: &str) -> Result<CommitFiles, SourceError>;
    /// A fetched commit's signature and the bytes it signs; `None` if it is not signed.
    fn signature(&self, rev: &str) -> Result<Option<Signed>, SourceError>;
}

/// One commit's content.
pub struct CommitFiles {
    pub summary: String,
    pub files: Vec<RepoFile>,
}

/// A commit's signature (armored) and the data it signs (the commit without `gpgsig`).
pub struct Signed {
    pub signature: Vec<u8>,
    pub data: Vec<u8>,
}

/// Why the source cannot be fetched or read. Messages never hold a credential.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A git operation failed; `what` says which.
    #[error("{what}")]
    Git {
        what: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot create {}", path.display())]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The fetch failed; `message` is libgit2's, scrubbed of the URL's credentials.
    #[error("cannot fetch {branch} from {url}: {message}")]
    Fetch {
        branch: String,
        url: String,
        message: String,
    },
    #[error("cannot read commit {rev}")]
    Tree {
        rev: String,
        #[source]
        source: mesh_check::CheckError,
    },
    #[error("cannot read the git password file {}", path.display())]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn git(what: impl Into<String>) -> impl FnOnce(git2::Error) -> SourceError {
    let what = what.into();
    move |source| SourceError::Git { what, source }
}

/// Where and how to fetch.
#[derive(Clone)]
pub struct GitSource {
    /// The remote: a URL (`https://`, `ssh://`, `git@host:path`) or a local directory.
    pub url: String,
    /// The branch to follow; `None` follows the remote's default branch (its `HEAD`).
    pub branch: Option<String>,
    /// The repository's root inside the git tree (`/`-separated; empty for the top).
    pub path: String,
    /// The bare cache repository.
    pub cache_dir: PathBuf,
    pub credentials: Credentials,
    /// The branch followed, once known: `branch`, or the remote's default branch as the first
    /// fetch found it (and, as in a `git clone`, kept afterwards).
    followed: OnceLock<String>,
}

/// Git credentials; `Debug` never shows a secret.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub ssh_key: Option<PathBuf>,
    pub ssh_passphrase: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ssh_key", &self.ssh_key)
            .field(
                "ssh_passphrase",
                &self.ssh_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// From the environment (`MESH_GITOPS_GIT_USERNAME`, `MESH_GITOPS_GIT_PASSWORD` or
    /// `MESH_GITOPS_GIT_PASSWORD_FILE`, `MESH_GITOPS_GIT_SSH_KEY`,
    /// `MESH_GITOPS_GIT_SSH_PASSPHRASE`), the command line's files taking precedence.
    pub fn from_env(
        password_file: Option<&Path>,
        ssh_key: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, SourceError> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        let password_file = password_file
            .map(Path::to_path_buf)
            .or_else(|| var("MESH_GITOPS_GIT_PASSWORD_FILE").map(PathBuf::from));
        let password = match password_file {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| SourceError::PasswordFile { path, source })?
                    .trim()
                    .to_owned(),
            ),
            None => var("MESH_GITOPS_GIT_PASSWORD"),
        };
        Ok(Credentials {
            username: var("MESH_GITOPS_GIT_USERNAME"),
            password,
            ssh_key: ssh_key
                .map(Path::to_path_buf)
                .or_else(|| var("MESH_GITOPS_GIT_SSH_KEY").map(PathBuf::from)),
            ssh_passphrase: var("MESH_GITOPS_GIT_SSH_PASSPHRASE"),
        })
    }
}

/// The URL for logs and status: user-info (which may hold a token) replaced by `***`.
pub fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

/// A cache directory name for a URL, stable across runs.
pub fn cache_name(url: &str) -> String {
    // FNV-1a: stable, dependency-free; a collision only shares a cache of fetched objects.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Shown as the branch of a source followed at its default branch, before the first fetch.
const DEFAULT_BRANCH: &str = "(the source's default branch)";

impl GitSource {
    /// A source following `branch`, or with `None` the remote's default branch.
    pub fn new(
        url: String,
        branch: Option<String>,
        path: String,
        cache_dir: PathBuf,
        credentials: Credentials,
    ) -> GitSource {
        let followed = OnceLock::new();
        if let Some(b) = &branch {
            let _ = followed.set(b.clone());
        }
        GitSource {
            url,
            branch,
            path,
            cache_dir,
            credentials,
            followed,
        }
    }

    fn open(&self) -> Result<git2::Repository, SourceError> {
        let dir = self.cache_dir.display();
        if self.cache_dir.join("HEAD").exists() {
            return git2::Repository::open_bare(&self.cache_dir)
                .map_err(git(format!("cannot open the cache repository {dir}")));
        }
        std::fs::create_dir_all(&self.cache_dir).map_err(|source| SourceError::CacheDir {
            path: self.cache_dir.clone(),
            source,
        })?;
        git2::Repository::init_bare(&self.cache_dir)
            .map_err(git(format!("cannot create the cache repository {dir}")))
    }

    /// Callbacks answering libgit2's credential requests from `credentials`.
    fn callbacks(&self) -> git2::RemoteCallbacks<'static> {
        let creds = self.credentials.clone();
        let mut attempts = 0u32;
        let mut callbacks = git2::RemoteCallbacks::new();
        callbacks.credentials(move |_url, user_from_url, allowed| {
            // libgit2 asks again after a rejection; three tries, then a clear error.
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str(
                    "authentication failed: the credentials were rejected",
                ));
            }
            let user = creds
                .username
                .as_deref()
                .or(user_from_url)
                .unwrap_or("git");
            if allowed.contains(git2::CredentialType::SSH_KEY) {
                return match &creds.ssh_key {
                    Some(key) => {
                        git2::Cred::ssh_key(user, None, key, creds.ssh_passphrase.as_deref())
                    }
                    None => git2::Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(p) = &creds.password {
                    return git2::Cred::userpass_plaintext(user, p);
                }
            }
            if allowed.contains(git2::CredentialType::USERNAME) {
                return git2::Cred::username(user);
            }
            if allowed.contains(git2::CredentialType::DEFAULT) {
                return git2::Cred::default();
            }
            Err(git2::Error::from_str(
                "the git source needs credentials: set MESH_GITOPS_GIT_PASSWORD(_FILE) or MESH_GITOPS_GIT_SSH_KEY",
            ))
        });
        callbacks
    }

    /// The branch to fetch: `--branch`, or the one the remote's `HEAD` names, which is what
    /// `git clone` checks out (for a local directory, the branch its `HEAD` is on).
    fn followed_branch(&self, remote: &mut git2::Remote<'_>) -> Result<String, SourceError> {
        if let Some(b) = self.followed.get() {
            return Ok(b.clone());
        }
        let fetch_error = |e: git2::Error| SourceError::Fetch {
            branch: DEFAULT_BRANCH.into(),
            url: redacted(&self.url),
            message: self.scrub(e.message()),
        };
        let connection = remote
            .connect_auth(git2::Direction::Fetch, Some(self.callbacks()), None)
            .map_err(fetch_error)?;
        let head = connection
            .default_branch()
            .map_err(|e| SourceError::Fetch {
                branch: DEFAULT_BRANCH.into(),
                url: redacted(&self.url),
                message: format!(
                    "the source's HEAD names no branch ({}); pass --branch",
                    self.scrub(e.message())
                ),
            })?;
        let head = head.as_str().unwrap_or_default();
        let Some(branch) = head.strip_prefix("refs/heads/") else {
            return Err(SourceError::Fetch {
                branch: DEFAULT_BRANCH.into(),
                url: redacted(&self.url),
                message: format!("the source's HEAD is {head:?}, not a branch; pass --branch"),
            });
        };
        drop(connection);
        tracing::info!(source = %redacted(&self.url), branch, "following the source's default branch (its HEAD; --branch chooses another)");
        Ok(self.followed.get_or_init(|| branch.to_owned()).clone())
    }

    /// Fetches the branch; returns the commit it points at. Blocking.
    pub fn fetch_oid(&self) -> Result<git2::Oid, SourceError> {
        let repo = self.open()?;
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(git(format!("invalid git source {}", redacted(&self.url))))?;
        let branch = self.followed_branch(&mut remote)?;
        let remote_ref = format!("refs/remotes/origin/{branch}");
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(self.callbacks());
        options.download_tags(git2::AutotagOption::None);
        let refspec = format!("+refs/heads/{branch}:{remote_ref}");
        remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .map_err(|e| SourceError::Fetch {
                branch: branch.clone(),
                url: redacted(&self.url),
                message: self.scrub(e.message()),
            })?;
        let reference = repo.find_reference(&remote_ref).map_err(git(format!(
            "the branch {branch} does not exist in {}",
            redacted(&self.url)
        )))?;
        reference
            .peel_to_commit()
            .map(|c| c.id())
            .map_err(git(format!("{remote_ref} does not point at a commit")))
    }

    /// A libgit2 message without the URL's credentials or the password, should it quote them.
    fn scrub(&self, message: &str) -> String {
        let mut m = message.replace(&self.url, &redacted(&self.url));
        if let Some(p) = self
            .credentials
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            m = m.replace(p, "***");
        }
        m
    }
}

fn oid(rev: &str) -> Result<git2::Oid, SourceError> {
    git2::Oid::from_str(rev).map_err(git(format!("invalid commit ID {rev:?}")))
}

impl Source for GitSource {
    fn shown(&self) -> String {
        redacted(&self.url)
    }

    fn branch(&self) -> &str {
        self.followed.get().map_or(DEFAULT_BRANCH, String::as_str)
    }

    fn fetch(&self) -> Result<String, SourceError> {
        self.fetch_oid().map(|oid| oid.to_string())
    }

    fn read(&self, rev: &str) -> Result<CommitFiles, SourceError> {
        let oid = oid(rev)?;
        let repo = self.open()?;
        let commit = repo
            .find_commit(oid)
            .map_err(git(format!("commit {oid} is not in the cache")))?;
        let summary =
            String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned();
        let tree = commit
            .tree()
            .map_err(git(format!("cannot read the tree of commit {oid}")))?;
        let files = mesh_check::files_in_tree(&repo, tree, self.path.trim_matches('/')).map_err(
            |source| SourceError::Tree {
                rev: oid.to_string(),
                source,
            },
        )?;
        Ok(CommitFiles { summary, files })
    }

    fn signature(&self, rev: &str) -> Result<Option<Signed>, SourceError> {
        let oid = oid(rev)?;
        let repo = self.open()?;
        match repo.extract_signature(&oid, None) {
            Ok((sig, data)) => Ok(Some(Signed {
                signature: sig.to_vec(),
                data: data.to_vec(),
            })),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git(format!("cannot read the signature of {oid}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redacted("https://user:tok3n@git.example.com/org/repo.git"),
            "https://***@git.example.com/org/repo.git"
        );
        assert_eq!(
            redacted("https://git.example.com/a@b"),
            "https://git.example.com/a@b"
        );
        assert_eq!(redacted("/srv/repo"), "/srv/repo");
        let c = Credentials {
            password: Some("hunter2".into()),
            ..Credentials::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    /// A repository whose only branch is `trunk`, with one commit; returns its ID.
    fn trunk_repo(dir: &Path) -> git2::Oid {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("trunk");
        let repo = git2::Repository::init_opts(dir, &opts).unwrap();
        std::fs::write(dir.join("mesh-gitops.hcl"), "owner = \"team\"\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("mesh-gitops.hcl")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "first", &tree, &[])
            .unwrap()
    }

    #[test]
    fn without_a_branch_the_source_s_head_branch_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = trunk_repo(&tmp.path().join("src"));
        let url = tmp.path().join("src").to_string_lossy().into_owned();
        let source = GitSource::new(
            url.clone(),
            None,
            String::new(),
            tmp.path().join("cache"),
            Credentials::default(),
        );
        assert_eq!(source.branch(), DEFAULT_BRANCH);
        assert_eq!(source.fetch_oid().unwrap(), commit);
        assert_eq!(source.branch(), "trunk");

        // --branch still decides.
        let named = GitSource::new(
            url,
            Some("main".into()),
            String::new(),
            tmp.path().join("cache-main"),
            Credentials::default(),
        );
        assert_eq!(named.branch(), "main");
        let err = named.fetch_oid().unwrap_err().to_string();
        assert!(err.contains("the branch main does not exist"), "{err}");
    }

    #[test]
    fn cache_names_are_stable() {
        assert_eq!(cache_name("a"), cache_name("a"));
        assert_ne!(cache_name("a"), cache_name("b"));
    }
}
