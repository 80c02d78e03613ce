//! The per-stage walker on its own, as the converter uses it: environment after each
//! instruction, RUN-only ARG values, and errors with spans.

use dray_frontend::instructions::{self, Command};
use dray_frontend::parser;
use dray_frontend::shell::Lexer;
use dray_frontend::stages::{GlobalArgs, StageScope};
use dray_frontend::{LineIndex, Span};

fn commands(src: &str) -> Vec<Command> {
    let ast = parser::parse(src.as_bytes()).unwrap();
    instructions::parse(&ast).unwrap().stages.remove(0).commands
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn walking_a_stage_step_by_step() {
    let mut globals = GlobalArgs::default();
    globals.values.insert("G".into(), "global".into());
    globals.build_args.insert("B".into(), "from-cli".into());
    let base = vec![("HOME".to_string(), "/root".to_string())];
    let mut scope = StageScope::new(Lexer::new('\\'), &globals, &base, "linux");
    assert_eq!(
        get(scope.env(), "PATH"),
        Some(dray_frontend::stages::DEFAULT_PATH)
    );

    let cmds = commands("FROM x\nARG G B C=$HOME/c\nENV D=$C E=$G\nENV HOME=/home/u\n");
    scope.apply(&cmds[0]).unwrap();
    assert_eq!(get(scope.env(), "G"), Some("global"));
    assert_eq!(get(scope.env(), "B"), Some("from-cli"));
    assert_eq!(get(scope.env(), "C"), Some("/root/c"));
    assert_eq!(
        get(scope.config_env(), "C"),
        None,
        "ARG values stay out of the image config"
    );
    assert_eq!(scope.args().len(), 3);

    let Command::Env(env) = scope.apply(&cmds[1]).unwrap() else {
        panic!()
    };
    assert_eq!(env.env[0].value, "/root/c");
    assert_eq!(get(scope.config_env(), "E"), Some("global"));
    scope.apply(&cmds[2]).unwrap();
    assert_eq!(get(scope.config_env(), "HOME"), Some("/home/u"));
    assert_eq!(get(scope.env(), "HOME"), Some("/home/u"));
}

#[test]
fn expanded_values_are_checked_with_the_flag_span() {
    let globals = GlobalArgs::default();
    let mut scope = StageScope::new(Lexer::new('\\'), &globals, &[], "linux");
    let src = "FROM x\nARG T=tmpfs M=abc\nRUN --mount=type=$T,target=/t,mode=0700 true\nCOPY --chmod=$M a b\n";
    let cmds = commands(src);
    scope.apply(&cmds[0]).unwrap();
    let err = scope.apply(&cmds[1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mode not allowed for \"tmpfs\" type mounts"
    );
    let at = LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!((at.line, at.column), (3, 5));
    let err = scope.apply(&cmds[2]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid chmod parameter \"abc\""),
        "{err}"
    );
    let at = LineIndex::new(src.as_bytes()).line_column(err.span().start);
    assert_eq!((at.line, at.column), (4, 6));
    assert_ne!(err.span(), Span::default());
}

#[test]
fn windows_stages_get_no_default_path() {
    let globals = GlobalArgs::default();
    let scope = StageScope::new(Lexer::new('`'), &globals, &[], "windows");
    assert!(scope.env().is_empty());
}
