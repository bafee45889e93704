//! `validate --format json`: the diagnostics as an array, each with its file, line and column.

use mesh_loader::Loaded;

/// The array, pretty-printed, with a final newline.
pub fn render(loaded: &Loaded) -> String {
    let diagnostics = mesh_diagnostics::render_json(&loaded.diagnostics, &loaded.sources);
    // A Vec of plain records always serializes.
    let text = serde_json::to_string_pretty(&diagnostics).unwrap_or_default();
    format!("{text}\n")
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::diagnostics::fixture::one_error;

    #[test]
    fn each_diagnostic_is_located_in_its_file() {
        let v: serde_json::Value = serde_json::from_str(&render(&one_error())).unwrap();
        let all = v.as_array().unwrap();
        assert_eq!(all.len(), 1, "{v}");
        assert_eq!(all[0]["file"], "intentions/db.hcl");
        assert_eq!(all[0]["severity"], "error");
        // The unclosed `[` itself, not the end of the file.
        assert_eq!(
            (&all[0]["line"], &all[0]["column"]),
            (&3.into(), &11.into()),
            "{v}"
        );
    }
}
