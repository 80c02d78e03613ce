//! `dray-sandbox-init`: the sandbox's init helper as a standalone program, so the crate's own
//! tests can run [`NativeExecutor`](dray_sandbox::NativeExecutor) without the `dray` binary
//! (`NativeExecutor::new(env!("CARGO_BIN_EXE_dray-sandbox-init"))`). `dray` itself serves the
//! same role as `dray __sandbox-init`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args_os().nth(1);
    if arg.as_deref() != Some(std::ffi::OsStr::new(dray_sandbox::INIT_ARG)) {
        eprintln!("usage: dray-sandbox-init {}", dray_sandbox::INIT_ARG);
        return ExitCode::from(2);
    }
    ExitCode::from(u8::try_from(dray_sandbox::init_main()).unwrap_or(1))
}
