//! `chmod(1)` symbolic mode specs (`u=rwX,go=rX`, `+x`, `g+s`), parsed once and applied to
//! each copied file's own mode.
//!
//! Grammar: comma-separated clauses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`. An empty "who" means
//! `a` (the process umask is **not** consulted: a build must not depend on it). `X` adds
//! execute only to directories and to files that already have an execute bit. `=` clears the
//! who's `rwx` bits (and, for non-directories, its setuid/setgid bits) before setting.

use crate::error::{Error, Result};

/// A parsed symbolic mode spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSpec {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    /// The bits the clause may touch: union of u=0o4700, g=0o2070, o=0o1007.
    who: u32,
    ops: Vec<(char, Perms)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perms {
    /// Letters from `rwxXst`.
    Letters(Vec<char>),
    /// Copy another class's current bits: `u`, `g` or `o`.
    Copy(char),
}

const WHO_U: u32 = 0o4700;
const WHO_G: u32 = 0o2070;
const WHO_O: u32 = 0o1007;
const WHO_A: u32 = WHO_U | WHO_G | WHO_O;

impl ModeSpec {
    /// Parses a spec; errors are [`Error::ModeSpec`].
    pub fn parse(spec: &str) -> Result<ModeSpec> {
        let err = |reason| Error::ModeSpec {
            spec: spec.to_owned(),
            reason,
        };
        let mut clauses = Vec::new();
        for clause in spec.split(',') {
            let mut chars = clause.chars().peekable();
            let mut who = 0;
            while let Some(&c) = chars.peek() {
                who |= match c {
                    'u' => WHO_U,
                    'g' => WHO_G,
                    'o' => WHO_O,
                    'a' => WHO_A,
                    _ => break,
                };
                chars.next();
            }
            if who == 0 {
                who = WHO_A;
            }
            let mut ops = Vec::new();
            while let Some(op) = chars.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return Err(err("expected one of + - ="));
                }
                let mut letters = Vec::new();
                let mut copy = None;
                while let Some(&c) = chars.peek() {
                    match c {
                        'r' | 'w' | 'x' | 'X' | 's' | 't' if copy.is_none() => letters.push(c),
                        'u' | 'g' | 'o' if letters.is_empty() && copy.is_none() => copy = Some(c),
                        '+' | '-' | '=' => break,
                        _ => return Err(err("unexpected permission character")),
                    }
                    chars.next();
                }
                ops.push((op, copy.map_or(Perms::Letters(letters), Perms::Copy)));
            }
            if ops.is_empty() {
                return Err(err("a clause needs an operator"));
            }
            clauses.push(Clause { who, ops });
        }
        Ok(ModeSpec { clauses })
    }

    /// Applies the spec to `mode` (permission and special bits) of a file or directory.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut mode = mode & 0o7777;
        for clause in &self.clauses {
            for (op, perms) in &clause.ops {
                let bits = match perms {
                    Perms::Letters(letters) => {
                        let mut bits = 0;
                        for l in letters {
                            bits |= match l {
                                'r' => 0o444,
                                'w' => 0o222,
                                'x' => 0o111,
                                'X' if is_dir || mode & 0o111 != 0 => 0o111,
                                's' => 0o6000,
                                't' => 0o1000,
                                _ => 0,
                            };
                        }
                        bits
                    }
                    Perms::Copy(from) => {
                        let rwx = match from {
                            'u' => (mode >> 6) & 7,
                            'g' => (mode >> 3) & 7,
                            _ => mode & 7,
                        };
                        rwx * 0o111
                    }
                };
                let value = bits & clause.who;
                match op {
                    '+' => mode |= value,
                    '-' => mode &= !value,
                    _ => {
                        let mut clear = clause.who & 0o777;
                        if !is_dir {
                            clear |= clause.who & 0o6000;
                        }
                        mode = (mode & !clear) | value;
                    }
                }
            }
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(spec: &str, mode: u32, is_dir: bool) -> u32 {
        ModeSpec::parse(spec).unwrap().apply(mode, is_dir)
    }

    #[test]
    fn symbolic_specs() {
        assert_eq!(apply("u=rwX,go=rX", 0o600, false), 0o644);
        assert_eq!(apply("u=rwX,go=rX", 0o700, false), 0o755);
        assert_eq!(apply("u=rwX,go=rX", 0o600, true), 0o755);
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("a-w", 0o777, false), 0o555);
        assert_eq!(apply("go-rwx", 0o755, false), 0o700);
        assert_eq!(apply("u+s,g+s", 0o755, false), 0o6755);
        assert_eq!(apply("+t", 0o777, true), 0o1777);
        assert_eq!(apply("g=u", 0o740, false), 0o770);
        assert_eq!(apply("o=", 0o777, false), 0o770);
        assert_eq!(apply("u=rw,u+x", 0o000, false), 0o700);
    }

    #[test]
    fn bad_specs() {
        for spec in ["", "u", "u*x", "z+x", "u+q", "u+rg", ",", "u+x,"] {
            assert!(ModeSpec::parse(spec).is_err(), "{spec:?}");
        }
    }
}
