//! Real git repositories, written with git2: files written into the work tree, then committed
//! (plain, SSH- or OpenPGP-signed) on branch `main`.

use std::path::{Path, PathBuf};

/// A git repository whose work tree is `dir`.
pub struct Repo {
    pub dir: PathBuf,
    pub repo: git2::Repository,
}

impl Repo {
    /// A new repository at `dir`, its HEAD on `main`.
    pub fn init(dir: &Path) -> Repo {
        Repo::init_on(dir, "main")
    }

    /// A new repository at `dir`, its HEAD on `branch`.
    pub fn init_on(dir: &Path, branch: &str) -> Repo {
        std::fs::create_dir_all(dir).unwrap();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head(branch);
        let repo = git2::Repository::init_opts(dir, &opts).unwrap();
        Repo {
            dir: dir.to_owned(),
            repo,
        }
    }

    /// Writes `text` to `path` in the work tree, creating directories.
    pub fn write(&self, path: &str, text: &str) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Removes `path` from the work tree.
    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.join(path)).unwrap();
    }

    /// Commits the whole work tree (added, changed and removed files); returns the commit ID.
    pub fn commit(&self, message: &str) -> git2::Oid {
        let tree = self.repo.find_tree(self.tree()).unwrap();
        let sig = signature();
        let parents = self.parents();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    /// Commits the whole work tree with an SSH signature made by `key`, as `git commit -S`
    /// with `gpg.format=ssh` does; returns the commit ID.
    pub fn commit_signed(&self, message: &str, key: &ssh_key::PrivateKey) -> git2::Oid {
        self.commit_signed_by(message, |content| {
            key.sign("git", ssh_key::HashAlg::Sha512, content)
                .unwrap()
                .to_pem(ssh_key::LineEnding::LF)
                .unwrap()
        })
    }

    /// Commits the whole work tree with the armored signature `sign` makes over the commit
    /// object (as `git commit -S` puts it in the `gpgsig` header); returns the commit ID.
    pub fn commit_signed_by(&self, message: &str, sign: impl FnOnce(&[u8]) -> String) -> git2::Oid {
        let tree = self.repo.find_tree(self.tree()).unwrap();
        let sig = signature();
        let parents = self.parents();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        let buffer = self
            .repo
            .commit_create_buffer(&sig, &sig, message, &tree, &parents)
            .unwrap();
        let content = std::str::from_utf8(&buffer).unwrap().to_owned();
        let signature = sign(content.as_bytes());
        let oid = self
            .repo
            .commit_signed(&content, &signature, Some("gpgsig"))
            .unwrap();
        // HEAD's branch, which may not exist yet (the first commit).
        let head = self.repo.find_reference("HEAD").unwrap();
        let name = head.symbolic_target().unwrap().unwrap().to_owned();
        self.repo
            .reference(&name, oid, true, "signed commit")
            .unwrap();
        oid
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> git2::Oid {
        self.repo.head().unwrap().peel_to_commit().unwrap().id()
    }

    fn tree(&self) -> git2::Oid {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        // add_all stages new and changed files; update_all stages removals.
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        index.write_tree().unwrap()
    }

    fn parents(&self) -> Vec<git2::Commit<'_>> {
        match self.repo.head() {
            Ok(h) => vec![h.peel_to_commit().unwrap()],
            Err(_) => Vec::new(),
        }
    }
}

/// A fixed author and time: the same commits give the same IDs on every run.
fn signature() -> git2::Signature<'static> {
    git2::Signature::new(
        "mesh-gitops test",
        "test@example.com",
        &git2::Time::new(1_700_000_000, 0),
    )
    .unwrap()
}
