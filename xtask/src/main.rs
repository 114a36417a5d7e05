//! `cargo xtask`: the workbench's commands, each a small function over the `workbench` library.

mod bench;
mod check_service;
mod fuzz;
mod package;
mod run;
mod soak;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use workbench::tools::{self, Tool};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run and test the Envoy auth plugin",
    after_help = "Each command first checks the tools it needs and installs the missing ones \
                  (apt-get as root, rustup, cargo install), or stops naming them."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a plugin folder into PLUGIN_DIR/main.wasm (release, small-binary profile), or
    /// with --shell native the dynamic module into target/native-module/release.
    Build {
        /// Plugin folder (default: plugins/http_auth_random).
        plugin_dir: Option<PathBuf>,
        #[command(flatten)]
        shell: ShellArg,
    },
    /// Serve a plugin in a real Envoy with the seed topology, until Ctrl-C, SIGTERM or SIGHUP.
    Run(run::RunArgs),
    /// Unit tests, a build of main.wasm, then the end-to-end tests in a real Envoy.
    Test(test::TestArgs),
    /// Mixed requests (allow, deny, error, reset) through one Envoy; prints RSS as it goes.
    Soak(soak::SoakArgs),
    /// Fuzz the filter's inputs: config_parse, auth_answer, json_verdict, cache_control,
    /// check_response, native_input.
    ///
    /// Each cargo-fuzz (libFuzzer) target runs for --seconds, one after another (--only picks
    /// some): config_parse gives any bytes as the plugin configuration; auth_answer any HTTP auth
    /// answer (status and body, under both rules) and any request headers to the auth-call
    /// builder; json_verdict any answer body, status and pointers to the JSON verdict rule and
    /// headers_from_json, an allow only where serde_json finds true at the pointer in a 2xx
    /// answer; cache_control any Cache-Control on an answer; check_response any bytes as a gRPC
    /// CheckResponse, and an allow's query edits applied to a path; native_input what the native
    /// module decodes from Envoy: any headers, data and trailers of a gRPC check's HTTP/2 stream,
    /// read into a message and a verdict, and any per-route settings, parsed and applied to the
    /// filter's configuration.
    Fuzz(fuzz::FuzzArgs),
    /// Benchmark the plugin against no filter, a no-op wasm filter and native ext_authz.
    Bench(bench::BenchArgs),
    /// Package the plugin as an OCI image (Istio compat variant): a layout folder and a tarball.
    Package(package::PackageArgs),
    /// A gRPC Check service that always allows or denies (the benchmark runs it).
    #[command(hide = true)]
    CheckService(check_service::CheckServiceArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The cause chain on one line; a backtrace would only bury it.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--shell`: the proxy-wasm plugin (the default) or the native dynamic module.
#[derive(clap::Args, Clone)]
pub struct ShellArg {
    /// Which shell of the filter: `wasm` (the proxy-wasm plugin) or `native` (the dynamic module).
    #[arg(long = "shell", value_name = "SHELL", default_value = "wasm", value_parser = ["wasm", "native"])]
    pub name: String,
}

impl ShellArg {
    pub fn shell(&self) -> workbench::shell::Shell {
        workbench::shell::Shell::parse(&self.name).unwrap_or(workbench::shell::Shell::Wasm)
    }

    /// Makes every Envoy this process starts serve the chosen shell; before any thread starts.
    fn apply(&self) {
        if self.shell() == workbench::shell::Shell::Native {
            std::env::set_var(workbench::shell::SHELL_VAR, "native");
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Run(args) => args.shell.apply(),
        Command::Soak(args) => args.shell.apply(),
        _ => {}
    }
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Build { shell, .. } if shell.shell() == workbench::shell::Shell::Native => {
            let module = workbench::shell::build_module(false)?;
            println!("{}", module.display());
            Ok(())
        }
        Command::Build { plugin_dir, .. } => {
            let dir = plugin_dir.unwrap_or_else(workbench::paths::default_plugin_dir);
            tools::ensure("build", &[Tool::WasmTarget, Tool::WasmOpt])?;
            let wasm = workbench::plugin::build(&dir, &[])?;
            println!("{}", wasm.display());
            Ok(())
        }
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Test(args) => test::test(args),
        Command::Soak(args) => runtime.block_on(soak::soak(args)),
        Command::Fuzz(args) => fuzz::fuzz(args),
        Command::Bench(args) => runtime.block_on(bench::bench(args)),
        Command::Package(args) => package::package(args),
        Command::CheckService(args) => runtime.block_on(check_service::serve(args)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_help_names_every_fuzz_target() {
        let help = Cli::command().render_help().to_string();
        for (target, _) in fuzz::TARGETS {
            assert!(help.contains(target), "{target} is not in:\n{help}");
        }
        let fuzz_help = Cli::command()
            .find_subcommand_mut("fuzz")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(fuzz_help.contains("EACH target"), "{fuzz_help}");
        let described = fuzz_help
            .split_once("one after another")
            .map(|(_, rest)| rest);
        for (target, _) in fuzz::TARGETS {
            assert!(
                described.is_some_and(|text| text.contains(target)),
                "the fuzz help says nothing of what {target} feeds:\n{fuzz_help}"
            );
        }
    }
}
