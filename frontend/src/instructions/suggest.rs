//! "Did you mean …?" suggestions, as BuildKit's `util/suggest`: the closest option within an
//! edit distance of 2.

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The option closest to `value` (distance at most 2), compared case-insensitively unless
/// `case_sensitive`; `None` for an exact match or nothing close. The option is returned
/// lowercased when the comparison is case-insensitive, as BuildKit does.
pub fn did_you_mean<'a>(
    value: &str,
    options: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let value = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<(usize, String)> = None;
    for option in options {
        let option = if case_sensitive {
            option.to_string()
        } else {
            option.to_lowercase()
        };
        if option == value {
            return None;
        }
        let d = distance(&value, &option);
        if d < 3 && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, option));
        }
    }
    best.map(|(_, o)| o)
}

/// Formats a suggestion for an error message: ` (did you mean x?)` or nothing.
pub(crate) fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_option_within_two_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("RUNN", ["RUN", "ENV"], false).as_deref(),
            Some("run")
        );
        assert_eq!(
            did_you_mean("form", ["from", "chown"], true).as_deref(),
            Some("from")
        );
        assert_eq!(did_you_mean("zzzzz", ["from"], true), None);
        assert_eq!(did_you_mean("from", ["from"], true), None);
        assert_eq!(hint(&Some("x".into())), " (did you mean x?)");
    }
}
