//! Escaping for the markup the renderers write.

/// Text for XML and HTML, in element content and in quoted attributes alike.
pub(crate) fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Text for a Markdown table cell: a `|` would end the cell and a newline the row.
pub(crate) fn markdown(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_escapes_ampersands_first() {
        // `&` first, or the `&` of every other entity would be escaped again.
        assert_eq!(super::xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }

    #[test]
    fn markdown_keeps_a_cell_one_cell() {
        assert_eq!(super::markdown("a|b\nc"), "a\\|b c");
    }
}
