//! The base of a comparison: a directory, a git revision, or the merge base a pull request
//! changes; files read straight from git's object database.

use crate::{CheckError, Result};
use mesh_loader::RepoFile;
use std::path::Path;

/// What to compare with: a directory or git revision (`rev`), shown to users as `label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSpec {
    pub rev: String,
    pub label: String,
}

impl BaseSpec {
    /// A base the user named (`--base REV|DIR`): shown as given.
    pub fn given(spec: &str) -> BaseSpec {
        BaseSpec {
            rev: spec.to_owned(),
            label: spec.to_owned(),
        }
    }
}

/// The base `check` uses when `--base` is not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultBase {
    /// The merge base of `HEAD` and `origin/HEAD`.
    MergeBase(BaseSpec),
    /// No base, and why.
    None(String),
}

/// The commit checked out in the git repository holding `dir` (`HEAD`), if there is one; a
/// saved plan names it for its reader.
pub fn head_revision(dir: &Path) -> Option<String> {
    let repo = git2::Repository::discover(dir).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?;
    Some(commit.id().to_string())
}

/// When `dir` is inside a git repository with `refs/remotes/origin/HEAD`, the merge base of
/// `HEAD` and `origin/HEAD` (what a pull request changes); otherwise no base. Never an error: a
/// repository without a usable merge base is compared with nothing, and the reason says why.
pub fn default_base(dir: &Path) -> DefaultBase {
    let none = |why: String| DefaultBase::None(why);
    let Ok(repo) = git2::Repository::discover(dir) else {
        return none(format!("{} is not in a git repository", dir.display()));
    };
    let Ok(origin) = repo.find_reference("refs/remotes/origin/HEAD") else {
        return none("the git repository has no origin/HEAD".to_owned());
    };
    // `origin/HEAD` is normally symbolic (`refs/remotes/origin/main`); name what it points at.
    let branch = origin
        .symbolic_target()
        .ok()
        .flatten()
        .map(|t| t.strip_prefix("refs/remotes/").unwrap_or(t).to_owned())
        .unwrap_or_else(|| "origin/HEAD".to_owned());
    let Some(theirs) = origin.resolve().ok().and_then(|r| r.target()) else {
        return none(format!(
            "origin/HEAD points at {branch}, which does not exist"
        ));
    };
    let Some(ours) = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id())
    else {
        return none("HEAD has no commit yet".to_owned());
    };
    match repo.merge_base(ours, theirs) {
        Ok(oid) => {
            let rev = oid.to_string();
            let short = rev.get(..12).unwrap_or(&rev).to_owned();
            DefaultBase::MergeBase(BaseSpec {
                label: format!("{short} (merge base of HEAD and {branch})"),
                rev,
            })
        }
        Err(e) => none(format!(
            "HEAD and {branch} have no merge base ({}; fetch more history or pass --base)",
            e.message()
        )),
    }
}

/// Every file under `dir` as it is in `rev`, read from the object database.
pub fn files_at_revision(dir: &Path, rev: &str) -> Result<Vec<RepoFile>> {
    let base = |what: String| {
        move |source| CheckError::Base {
            rev: rev.to_owned(),
            what,
            source,
        }
    };
    let repo = git2::Repository::discover(dir).map_err(base(format!(
        "{} is not in a git repository",
        dir.display()
    )))?;
    let object = repo
        .revparse_single(rev)
        .map_err(base("no such revision".to_owned()))?;
    let tree = object
        .peel_to_tree()
        .map_err(base("not a commit or tree".to_owned()))?;
    let workdir = repo
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo.path().to_path_buf());
    let abs_dir = dir.canonicalize().map_err(|source| CheckError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let workdir = workdir.canonicalize().unwrap_or(workdir);
    let prefix = abs_dir
        .strip_prefix(&workdir)
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default();
    files_in_tree(&repo, tree, &prefix).map_err(|e| CheckError::InRevision {
        rev: rev.to_owned(),
        source: Box::new(e),
    })
}

/// Every configuration file under `prefix` (a `/`-separated directory, empty for the root) of
/// a git tree, with paths relative to `prefix`; hidden files and directories are skipped (the
/// ignore file is kept). A missing `prefix` is an empty repository. Shared by `check --base`
/// and `reconcile`, which loads each commit it fetches straight from the object database.
pub fn files_in_tree(
    repo: &git2::Repository,
    tree: git2::Tree<'_>,
    prefix: &str,
) -> Result<Vec<RepoFile>> {
    let subtree = if prefix.is_empty() {
        tree
    } else {
        match tree.get_path(Path::new(prefix)) {
            Ok(entry) => entry.to_object(repo)?.peel_to_tree().map_err(|source| {
                CheckError::NotADirectory {
                    prefix: prefix.to_owned(),
                    source,
                }
            })?,
            // The repository did not exist at that revision: an empty one.
            Err(_) => return Ok(Vec::new()),
        }
    };
    let mut files = Vec::new();
    let mut error = None;
    subtree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return git2::TreeWalkResult::Ok;
        }
        let name = entry.name().unwrap_or_default();
        let path = format!("{root}{name}");
        // Hidden files and directories are not configuration, except the ignore file.
        if path
            .split('/')
            .any(|c| c.starts_with('.') && c != ".meshignore")
        {
            return git2::TreeWalkResult::Ok;
        }
        match entry.to_object(repo).and_then(|o| o.peel_to_blob()) {
            Ok(blob) => files.push(RepoFile {
                path,
                contents: blob.content().to_vec(),
            }),
            Err(e) => {
                error = Some(e);
                return git2::TreeWalkResult::Abort;
            }
        }
        git2::TreeWalkResult::Ok
    })?;
    if let Some(e) = error {
        return Err(CheckError::Blob(e));
    }
    Ok(files)
}
