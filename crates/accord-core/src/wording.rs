//! Words for people: counts with proper plurals, never "request(s)".

/// "1 request", "3 requests", "2 policies", "2 addresses". `noun` is the singular; for a
/// phrase, its last word is the one made plural ("2 pending requests").
pub fn count(n: i64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.strip_suffix('y').filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']));
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None if noun.ends_with(['s', 'x']) || noun.ends_with("sh") || noun.ends_with("ch") => format!("{n} {noun}es"),
        None => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_are_worded_with_proper_plurals() {
        assert_eq!(count(1, "request"), "1 request");
        assert_eq!(count(0, "request"), "0 requests");
        assert_eq!(count(2, "policy"), "2 policies");
        assert_eq!(count(2, "day"), "2 days");
        assert_eq!(count(3, "address"), "3 addresses");
        assert_eq!(count(2, "pending request"), "2 pending requests");
    }
}
