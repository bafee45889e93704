//! `show --format yaml`: the JSON document of `state::json`, written as YAML.

use crate::Error;
use mesh_loader::Loaded;

pub fn render(loaded: &Loaded) -> Result<String, Error> {
    Ok(serde_saphyr::to_string(&super::json::value(loaded)?)?)
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::check::fixture::{ALLOW_DB, SETTINGS};
    use mesh_loader::{LoadOptions, RepoFile};

    #[test]
    fn the_yaml_has_the_json_document_s_sections_in_order() {
        let files = [SETTINGS, ALLOW_DB]
            .into_iter()
            .map(|(path, text)| RepoFile {
                path: path.into(),
                contents: text.as_bytes().to_vec(),
            })
            .collect();
        let yaml = render(&mesh_loader::load_files(files, &LoadOptions::default())).unwrap();
        let top: Vec<&str> = yaml
            .lines()
            .filter(|l| !l.starts_with([' ', '-']) && l.contains(':'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            top,
            ["settings", "services", "config_entries", "acl", "ca_config"],
            "{yaml}"
        );
        assert!(yaml.contains("Kind: service-intentions"), "{yaml}");
    }
}
