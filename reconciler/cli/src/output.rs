//! `--output FORMAT[=PATH]` and `--format`: where a result's renderings go. The result is
//! computed once; every destination gets its format rendered from it.
//!
//! The rules (the README says the same):
//! - `--output FORMAT=PATH` writes FORMAT to PATH; `--output FORMAT` (or `FORMAT=-`) to stdout.
//!   Repeatable.
//! - `--format FORMAT` is `--output FORMAT`. Without any `--output`, the default format goes to
//!   stdout as it always did; with one, stdout gets only what is asked for.
//! - At most one rendering on stdout, and each path once.
//! - A file is written next to its final name and renamed over it, so a reader never sees half a
//!   report; missing parent directories are created.

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One rendering and where it goes (`None`: stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output<F> {
    pub format: F,
    pub path: Option<PathBuf>,
}

/// Parses `FORMAT`, `FORMAT=-` or `FORMAT=PATH`.
pub fn parse<F: ValueEnum>(s: &str) -> Result<Output<F>, String> {
    let (name, path) = match s.split_once('=') {
        Some((name, "-")) => (name, None),
        Some((_, "")) => return Err(format!("expected FORMAT=PATH, got \"{s}\" (no path)")),
        Some((name, path)) => (name, Some(PathBuf::from(path))),
        None => (s, None),
    };
    let format = F::from_str(name, false).map_err(|_| {
        let known: Vec<String> = F::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!(
            "unknown format \"{name}\" (one of: {}), in \"{s}\"",
            known.join(", ")
        )
    })?;
    Ok(Output { format, path })
}

/// Every destination of one run, in the order given, `--format`'s (or the default) first.
pub fn destinations<F: Copy + PartialEq>(
    format: Option<F>,
    outputs: &[Output<F>],
    default: F,
) -> Result<Vec<Output<F>>> {
    let stdout = match (format, outputs.is_empty()) {
        (Some(f), _) => Some(f),
        (None, true) => Some(default),
        (None, false) => None,
    };
    let mut all: Vec<Output<F>> = stdout
        .map(|format| Output { format, path: None })
        .into_iter()
        .chain(outputs.iter().cloned())
        .collect();
    // The same rendering asked for twice (`--format json --output json`) is written once.
    let mut seen: Vec<Output<F>> = Vec::new();
    all.retain(|o| {
        let new = !seen.contains(o);
        seen.push(o.clone());
        new
    });
    if all.iter().filter(|o| o.path.is_none()).count() > 1 {
        bail!("more than one format on stdout: give the others a path (--output FORMAT=PATH)");
    }
    for (i, o) in all.iter().enumerate() {
        if let Some(p) = &o.path {
            if all[..i].iter().any(|e| e.path.as_ref() == Some(p)) {
                bail!("{} is given to two formats", p.display());
            }
        }
    }
    Ok(all)
}

/// Renders and writes every destination: the files first, then stdout.
pub fn write_all<F: Copy>(outputs: &[Output<F>], render: impl Fn(F) -> String) -> Result<()> {
    for o in outputs {
        if let Some(path) = &o.path {
            write_file(path, render(o.format).as_bytes())?;
        }
    }
    for o in outputs.iter().filter(|o| o.path.is_none()) {
        std::io::stdout()
            .lock()
            .write_all(render(o.format).as_bytes())?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
    enum F {
        Text,
        Json,
        Sarif,
    }

    fn out(format: F, path: Option<&str>) -> Output<F> {
        Output {
            format,
            path: path.map(PathBuf::from),
        }
    }

    #[test]
    fn a_format_alone_or_with_a_dash_means_stdout() {
        assert_eq!(parse::<F>("json"), Ok(out(F::Json, None)));
        assert_eq!(parse::<F>("json=-"), Ok(out(F::Json, None)));
        assert_eq!(
            parse::<F>("sarif=reports/a=b.sarif"),
            Ok(out(F::Sarif, Some("reports/a=b.sarif")))
        );
        let err = parse::<F>("yaml=x").unwrap_err();
        assert!(err.contains("one of: text, json, sarif"), "{err}");
        assert!(parse::<F>("json=").is_err());
    }

    #[test]
    fn format_and_outputs_combine() {
        // Neither: the default on stdout.
        assert_eq!(
            destinations(None, &[], F::Text).unwrap(),
            [out(F::Text, None)]
        );
        // Outputs only: no default on stdout.
        let files = [out(F::Sarif, Some("a.sarif"))];
        assert_eq!(destinations(None, &files, F::Text).unwrap(), files);
        // --format adds stdout to the files.
        assert_eq!(
            destinations(Some(F::Json), &files, F::Text).unwrap(),
            [out(F::Json, None), out(F::Sarif, Some("a.sarif"))]
        );
        // The same rendering twice is one.
        assert_eq!(
            destinations(Some(F::Json), &[out(F::Json, None)], F::Text).unwrap(),
            [out(F::Json, None)]
        );
    }

    #[test]
    fn two_renderings_cannot_share_stdout_or_a_path() {
        let err = destinations(Some(F::Json), &[out(F::Text, None)], F::Text).unwrap_err();
        assert!(err.to_string().contains("more than one format on stdout"));
        let twice = [out(F::Json, Some("r")), out(F::Sarif, Some("r"))];
        let err = destinations(None, &twice, F::Text).unwrap_err();
        assert!(
            err.to_string().contains("r is given to two formats"),
            "{err}"
        );
    }

    #[test]
    fn a_file_is_replaced_whole_and_its_directory_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/nested/r.json");
        write_file(&path, b"first").unwrap();
        write_file(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["r.json"], "no temporary file is left behind");
    }
}
