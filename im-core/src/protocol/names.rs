//! Name normalisation shared by usernames and room names.

use unicode_normalization::UnicodeNormalization;

/// Shortest valid name, in characters.
pub const MIN_LEN: usize = 3;
/// Longest valid name, in characters.
pub const MAX_LEN: usize = 32;

/// NFKC, then lowercase, then checks `[a-z0-9][a-z0-9_.-]{2,31}`.
///
/// Returns `None` when the normalised name breaks the rule. Input longer than
/// a few hundred bytes is refused before normalising so a hostile name cannot
/// cost more than a valid one.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_LEN * 8 {
        return None;
    }
    let name: String = input.nfkc().collect::<String>().to_lowercase();
    let len = name.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return None;
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok_first = first.is_ascii_lowercase() || first.is_ascii_digit();
    let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    (ok_first && ok_rest).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names() {
        assert_eq!(normalize("Alice").as_deref(), Some("alice"));
        assert_eq!(normalize("ＡＬＩＣＥ").as_deref(), Some("alice"));
        assert_eq!(normalize("a.b-c_9").as_deref(), Some("a.b-c_9"));
        assert_eq!(normalize("ab"), None);
        assert_eq!(normalize(&"a".repeat(33)), None);
        assert_eq!(normalize("_abc"), None);
        assert_eq!(normalize("al ice"), None);
        assert_eq!(normalize("alicé"), None);
        assert_eq!(normalize(""), None);
    }
}
