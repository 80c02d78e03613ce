//! `--chmod` values of COPY and ADD: octal (`0755`, `644`) or symbolic (`u=rwX,go=rX`).
//!
//! BuildKit accepts octal modes and, since Dockerfile 1.10 / BuildKit 0.16 (out of labs in
//! #5734), the symbolic clauses of chmod(1): `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`, separated by
//! commas. A clause without `u`/`g`/`o`/`a` applies to all three classes (no umask is involved).
//! [`ChmodSpec::apply`] computes the resulting mode of a file, which the converter needs since
//! `X` depends on whether the file is a directory or already executable.

use serde::Serialize;

use super::error::ChmodError;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChmodSpec {
    /// An absolute octal mode (at most `7777`).
    Octal(u32),
    /// Symbolic clauses, applied left to right.
    Symbolic(Vec<SymbolicClause>),
}

/// One comma-separated clause: who it applies to and its operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolicClause {
    /// The classes, as a subset of `"ugo"` (`a` and an empty list are stored as `"ugo"`).
    pub who: String,
    /// The operations, in order (`u+x-w` has two).
    pub actions: Vec<SymbolicAction>,
}

/// One operator and its operand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolicAction {
    /// `+`, `-` or `=`.
    pub op: char,
    /// Permission letters from `rwxXst`, or a single class letter (`g=u` copies the user bits).
    pub perms: String,
}

/// Parses a `--chmod` value.
pub fn parse_chmod(value: &str) -> Result<ChmodSpec, ChmodError> {
    if value.is_empty() {
        return Err(ChmodError::Empty);
    }
    if value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return match u32::from_str_radix(value, 8) {
            Ok(mode) if mode <= 0o7777 => Ok(ChmodSpec::Octal(mode)),
            _ => Err(ChmodError::OctalOutOfRange),
        };
    }
    value
        .split(',')
        .map(parse_clause)
        .collect::<Result<_, _>>()
        .map(ChmodSpec::Symbolic)
}

fn parse_clause(clause: &str) -> Result<SymbolicClause, ChmodError> {
    let unexpected = |found| ChmodError::UnexpectedChar {
        clause: clause.to_string(),
        found,
    };
    let mut chars = clause.chars().peekable();
    let mut who = String::new();
    while let Some(&c) = chars.peek() {
        match c {
            'u' | 'g' | 'o' => who.push(c),
            'a' => who.push_str("ugo"),
            '+' | '-' | '=' => break,
            _ => return Err(unexpected(c)),
        }
        chars.next();
    }
    let mut who: String = "ugo"
        .chars()
        .filter(|c| who.is_empty() || who.contains(*c))
        .collect();
    if who.is_empty() {
        who = "ugo".to_string();
    }
    let mut actions: Vec<SymbolicAction> = Vec::new();
    for c in chars {
        match c {
            '+' | '-' | '=' => actions.push(SymbolicAction {
                op: c,
                perms: String::new(),
            }),
            'r' | 'w' | 'x' | 'X' | 's' | 't' | 'u' | 'g' | 'o' => {
                let Some(action) = actions.last_mut() else {
                    return Err(unexpected(c));
                };
                let copies = action.perms.chars().any(|p| "ugo".contains(p));
                let is_class = "ugo".contains(c);
                // A class letter must be the whole operand.
                if copies || (is_class && !action.perms.is_empty()) {
                    return Err(unexpected(c));
                }
                action.perms.push(c);
            }
            _ => return Err(unexpected(c)),
        }
    }
    if actions.is_empty() {
        return Err(ChmodError::MissingOperator {
            clause: clause.to_string(),
        });
    }
    Ok(SymbolicClause { who, actions })
}

impl ChmodSpec {
    /// The mode a file with mode `current` gets (permission bits, setuid/setgid/sticky).
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            ChmodSpec::Octal(mode) => *mode,
            ChmodSpec::Symbolic(clauses) => clauses
                .iter()
                .fold(current & 0o7777, |mode, c| apply_clause(c, mode, is_dir)),
        }
    }
}

/// (shift of the rwx bits, special bit) for a class letter.
fn class_bits(class: char) -> (u32, u32) {
    match class {
        'u' => (6, 0o4000),
        'g' => (3, 0o2000),
        _ => (0, 0o1000),
    }
}

fn apply_clause(clause: &SymbolicClause, mut mode: u32, is_dir: bool) -> u32 {
    for action in &clause.actions {
        let any_exec = mode & 0o111 != 0;
        let mut bits = 0;
        for class in clause.who.chars() {
            let (shift, special) = class_bits(class);
            let mut rwx = 0;
            for p in action.perms.chars() {
                match p {
                    'r' => rwx |= 4,
                    'w' => rwx |= 2,
                    'x' => rwx |= 1,
                    'X' if is_dir || any_exec => rwx |= 1,
                    's' if class != 'o' => bits |= special,
                    't' if class == 'o' => bits |= special,
                    'u' | 'g' | 'o' => rwx |= (mode >> class_bits(p).0) & 7,
                    _ => {}
                }
            }
            bits |= rwx << shift;
        }
        match action.op {
            '+' => mode |= bits,
            '-' => mode &= !bits,
            _ => {
                let mut clear = 0;
                for class in clause.who.chars() {
                    let (shift, special) = class_bits(class);
                    clear |= (7 << shift) | if class == 'o' { 0 } else { special };
                }
                mode = (mode & !clear) | bits;
            }
        }
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes() {
        assert_eq!(parse_chmod("0755"), Ok(ChmodSpec::Octal(0o755)));
        assert_eq!(parse_chmod("644"), Ok(ChmodSpec::Octal(0o644)));
        assert_eq!(parse_chmod("4755"), Ok(ChmodSpec::Octal(0o4755)));
        assert_eq!(parse_chmod("17777"), Err(ChmodError::OctalOutOfRange));
        assert_eq!(parse_chmod(""), Err(ChmodError::Empty));
    }

    #[test]
    fn symbolic_modes_parse_and_apply() {
        let spec = parse_chmod("u=rwX,go=rX").unwrap();
        assert_eq!(spec.apply(0o600, false), 0o644);
        assert_eq!(spec.apply(0o600, true), 0o755);
        assert_eq!(
            spec.apply(0o700, false),
            0o755,
            "X keeps files that are executable"
        );
        assert_eq!(parse_chmod("+x").unwrap().apply(0o644, false), 0o755);
        assert_eq!(parse_chmod("a-w").unwrap().apply(0o666, false), 0o444);
        assert_eq!(parse_chmod("o=").unwrap().apply(0o777, false), 0o770);
        assert_eq!(parse_chmod("g=u").unwrap().apply(0o740, false), 0o770);
        assert_eq!(parse_chmod("u+s,+t").unwrap().apply(0o755, false), 0o5755);
        assert_eq!(parse_chmod("u+x-w").unwrap().apply(0o644, false), 0o544);
    }

    #[test]
    fn symbolic_errors() {
        assert!(matches!(
            parse_chmod("u"),
            Err(ChmodError::MissingOperator { .. })
        ));
        assert!(matches!(
            parse_chmod("u+z"),
            Err(ChmodError::UnexpectedChar { found: 'z', .. })
        ));
        assert!(matches!(
            parse_chmod("0x755"),
            Err(ChmodError::UnexpectedChar { .. })
        ));
        assert!(matches!(
            parse_chmod("g=ur"),
            Err(ChmodError::UnexpectedChar { found: 'r', .. })
        ));
        assert!(matches!(
            parse_chmod("u+x,"),
            Err(ChmodError::MissingOperator { .. })
        ));
    }
}
