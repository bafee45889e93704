//! OpenPGP-signed commits in a real git repository (written with git2, signed as `git commit -S`
//! with gpg does: an armored detached signature in the `gpgsig` header), read back the way the
//! reconcile loop reads them: fetched by [`GitSource`], the signature and the signed bytes
//! taken out by libgit2, and judged by [`signing::verify`].

mod pgp_keys;

use mesh_reconcile::signing::{self, TrustedKeys, Untrusted};
use mesh_reconcile::source::Credentials;
use mesh_reconcile::{GitSource, Source};
use pgp::composed::SignedSecretKey;
use pgp_keys::{armored, fingerprint, key, sign, Kind, CREATED, DAY};
use std::path::Path;

struct Repo {
    repo: git2::Repository,
    /// Commits made so far; each commit's time is one day after the last.
    made: std::cell::Cell<u32>,
}

impl Repo {
    fn init(dir: &Path) -> Repo {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        Repo {
            repo: git2::Repository::init_opts(dir, &opts).unwrap(),
            made: std::cell::Cell::new(0),
        }
    }

    /// The commit object's bytes without a signature, and its time: a file `n.txt` added.
    fn buffer(&self, message: &str) -> (String, u32) {
        let n = self.made.get() + 1;
        self.made.set(n);
        let at = CREATED + n * DAY;
        let blob = self.repo.blob(message.as_bytes()).unwrap();
        let parent = self.repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let mut tree = self
            .repo
            .treebuilder(parent.as_ref().map(|p| p.tree().unwrap()).as_ref())
            .unwrap();
        tree.insert(format!("{n}.txt"), blob, 0o100_644).unwrap();
        let tree = self.repo.find_tree(tree.write().unwrap()).unwrap();
        let who = git2::Signature::new(
            "mesh-gitops test",
            "test@example.com",
            &git2::Time::new(i64::from(at), 0),
        )
        .unwrap();
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let buffer = self
            .repo
            .commit_create_buffer(&who, &who, message, &tree, &parents)
            .unwrap();
        (std::str::from_utf8(&buffer).unwrap().to_owned(), at)
    }

    /// Writes a commit object with `signature` in `gpgsig` and moves `main` to it.
    fn put(&self, content: &str, signature: Option<&str>) -> String {
        let oid = match signature {
            Some(sig) => self
                .repo
                .commit_signed(content, sig, Some("gpgsig"))
                .unwrap(),
            None => self
                .repo
                .odb()
                .unwrap()
                .write(git2::ObjectType::Commit, content.as_bytes())
                .unwrap(),
        };
        self.repo
            .reference("refs/heads/main", oid, true, "commit")
            .unwrap();
        oid.to_string()
    }

    /// A commit signed by `key` at the commit's time.
    fn signed(&self, message: &str, key: &SignedSecretKey) -> String {
        let (content, at) = self.buffer(message);
        self.put(&content, Some(&sign(key, at, content.as_bytes())))
    }
}

/// What the loop decides for the head of `repo`, fetched into `cache`.
fn verdict(source: &GitSource, trusted: &TrustedKeys) -> Result<String, Untrusted> {
    let head = source.fetch().unwrap();
    let signed = source
        .signature(&head)
        .unwrap()
        .expect("the commit is signed");
    signing::verify(&signed.signature, &signed.data, trusted)
}

#[test]
fn openpgp_signed_git_commits_are_verified_from_the_fetched_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::init(&tmp.path().join("repo"));
    let maintainer = key(21, Kind::Ed25519Legacy);
    let github = key(22, Kind::Rsa(2048));
    let stranger = key(23, Kind::Ed25519Legacy);
    let trusted = TrustedKeys::parse(&format!(
        "{}{}",
        armored(&maintainer.to_public_key()),
        armored(&github.to_public_key())
    ))
    .unwrap();
    let source = GitSource::new(
        tmp.path().join("repo").to_string_lossy().into_owned(),
        Some("main".into()),
        String::new(),
        tmp.path().join("cache"),
        Credentials::default(),
    );

    let (content, _) = repo.buffer("unsigned");
    let unsigned = repo.put(&content, None);
    assert_eq!(source.fetch().unwrap(), unsigned);
    assert!(source.signature(&unsigned).unwrap().is_none());

    repo.signed("by the maintainer", &maintainer);
    let who = verdict(&source, &trusted).unwrap();
    assert_eq!(
        who,
        format!(
            "Signer 21 <signer21@example.com> ({})",
            fingerprint(&maintainer)
        )
    );

    // A squash merge made on github.com.
    repo.signed("Merge pull request #1 (#1)", &github);
    assert!(verdict(&source, &trusted).is_ok());

    repo.signed("by someone else", &stranger);
    assert_eq!(
        verdict(&source, &trusted),
        Err(Untrusted::PgpUnknownKey(fingerprint(&stranger)))
    );

    // The maintainer's signature moved onto a commit whose message was changed.
    let (content, at) = repo.buffer("reviewed change");
    let sig = sign(&maintainer, at, content.as_bytes());
    repo.put(
        &content.replace("reviewed change", "unreviewed change"),
        Some(&sig),
    );
    assert_eq!(verdict(&source, &trusted), Err(Untrusted::Forged));
}

/// GitHub's web-flow keys as GitHub publishes them (one block, the key of 2017 with the
/// self-signature that ends it in January 2024, and the key of 2024), and two merge commits
/// GitHub made and signed, one with each (from a public repository, byte for byte).
#[test]
fn commits_signed_by_github_verify_with_its_published_web_flow_keys() {
    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let keys = std::fs::read_to_string(format!("{DATA}/web-flow.asc")).unwrap();
    let trusted = TrustedKeys::parse(&keys).unwrap();
    let fingerprints: Vec<String> = trusted.pgp.iter().map(|k| k.fingerprint()).collect();
    assert_eq!(
        fingerprints,
        [
            "5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23",
            "968479A1AFF927E37D1A566BB5690EEEBB952194"
        ]
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(tmp.path()).unwrap();
    let odb = repo.odb().unwrap();
    let judge = |commit: &[u8]| {
        let oid = odb.write(git2::ObjectType::Commit, commit).unwrap();
        let (sig, data) = repo.extract_signature(&oid, None).unwrap();
        (oid.to_string(), signing::verify(&sig, &data, &trusted))
    };
    for (file, id, signer) in [
        (
            "web-flow-2023.commit",
            "04774c089409597e4859ed256ef68eeb60ba81a7",
            "GitHub (web-flow commit signing) <noreply@github.com> (5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23)",
        ),
        (
            "web-flow-2026.commit",
            "e621bd35ddddcd8b2f39d80b9f5938583571a87d",
            "GitHub <noreply@github.com> (968479A1AFF927E37D1A566BB5690EEEBB952194)",
        ),
    ] {
        let commit = std::fs::read(format!("{DATA}/{file}")).unwrap();
        let (oid, verdict) = judge(&commit);
        assert_eq!(oid, id, "the commit's bytes are intact");
        assert_eq!(verdict.as_deref(), Ok(signer));
        // The same signature over a commit whose message was changed.
        let text = String::from_utf8(commit).unwrap();
        let altered = text.replace("Merge pull request", "Merge pull request (edited)");
        assert_eq!(judge(altered.as_bytes()).1, Err(Untrusted::Forged));
    }
}
