//! `mesh-gitops completions SHELL`: completions for the shell, from the same command
//! definition that parses the arguments, so they never drift from `--help`.

use clap::CommandFactory as _;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completions to stdout.
pub fn run(args: &CompletionsArgs) {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "mesh-gitops", &mut std::io::stdout());
}
