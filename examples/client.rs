//! A terminal client for the example server.
//!
//! ```text
//! cargo run --example client -- --url tcp://127.0.0.1:7878 --user alice
//! cargo run --example client -- --url ws://127.0.0.1:8080/ws --user bob --register
//! printf 'secret password\n/msg bob hello\n/quit\n' | cargo run --example client -- --user alice
//! ```
//!
//! On a terminal it is a full-screen chat; otherwise it runs in line mode
//! (the first input line is the password, then one command per line).
//! The code lives in `src/client/` (`im_examples::client`).

use std::io::IsTerminal;
use std::process::ExitCode;

use im_examples::client::{line, tui, Options, Parsed, USAGE};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = if std::io::stdin().is_terminal() {
        runtime.block_on(tui::run(&opts))
    } else {
        runtime.block_on(async {
            let mut out = std::io::stdout();
            line::run(&opts, line::stdin_lines(), &mut out).await
        })
    };
    // Threads blocked on standard input or the terminal must not keep
    // the process alive.
    runtime.shutdown_background();
    ExitCode::from(status.clamp(0, 255) as u8)
}
