//! Picks the mode (FastCGI, CGI, demo, sample API) and maps fatal errors to exit codes.

use std::process::ExitCode;
use std::sync::Arc;

use tokenusage::app::{Site, SiteOptions, handle};
use tokenusage::auth::session_store;
use tokenusage::auth::{self, Auth};
use tokenusage::cli::{self as args, Args, Command, SessionTarget};
use tokenusage::data::license_api::{ApiClient, client};
use tokenusage::dev::{demo, sample_api};
use tokenusage::php::session::session_keys_report;
use tokenusage::transport::response::Response;
use tokenusage::transport::{cgi, fastcgi, signals};

fn main() -> ExitCode {
    // glibc gives each busy thread its own malloc arena and keeps what they free: with 16
    // workers over 100 installations that doubled the peak RSS. Two arenas suffice.
    // SAFETY: mallopt only sets an allocator parameter, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // `args_os`: under CGI the arguments are a visitor's decoded query string, and
    // `std::env::args` would panic on one that is not UTF-8.
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let env = |name: &str| std::env::var(name).ok();
    let gateway_interface = std::env::var_os("GATEWAY_INTERFACE").is_some();
    let parsed = match args::cgi_request(&argv, gateway_interface) {
        Some(ignored) => {
            if let Some(note) = args::ignored_arguments_note(ignored) {
                eprintln!("tokenusage: {note}");
            }
            args::parse_cgi(&env).inspect_err(|message| {
                // Answer with what to fix rather than leave the admin a blank 500.
                let _ = answer_unset_cgi(message);
            })
        }
        None => args::parse(&argv, &env),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("tokenusage: {message}");
            return ExitCode::from(2);
        }
    };
    match run(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tokenusage: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    match args.command {
        Command::Help => {
            print!("{}", args::USAGE);
            Ok(())
        }
        Command::Version => {
            println!("tokenusage {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::SampleApi(rest) => sample_api::run_cli(&rest),
        Command::SessionKeys(target) => session_keys(&target, &args.auth.session_path),
        Command::Demo => {
            let root = args.root.clone().unwrap_or_else(demo::default_root);
            demo::run(&root, &args.demo_listen, args.demo_transactions)
        }
        Command::Cgi => serve_cgi(&args),
        Command::Fcgi | Command::Auto => {
            // Handlers first: a signal that arrives once the socket exists must find them.
            let shutdown = signals::shutdown_flag();
            serve_fastcgi(&args, listener(&args)?, shutdown)
        }
    }
}

fn site(args: &Args, one_request: bool) -> Result<Site, String> {
    let auth = Auth::new(&args.auth)?;
    match auth {
        Auth::None => eprintln!(
            "tokenusage: warning: --auth none: anyone who reaches this URL sees the dashboard"
        ),
        Auth::WebServer => eprintln!("tokenusage: warning: {}", auth::WEB_SERVER_WARNING),
        _ => {}
    }
    let api = ApiClient::new(
        args.api_connect_timeout,
        args.api_timeout,
        client::MAX_BODY_BYTES,
    );
    Site::new(SiteOptions {
        root: args.root.clone(),
        templates: args.templates.clone(),
        auth,
        api,
        account_ttl: args.account_cache,
        api_patience: args.api_patience,
        api_retry_after: args.api_retry_after,
        memo_budget: args.memory_budget_mb * 1024 * 1024,
        one_request,
        ..SiteOptions::default()
    })
    .map_err(|e| e.to_string())
}

/// Lists a session's keys and value types, values hidden.
fn session_keys(target: &SessionTarget, session_path: &str) -> Result<(), String> {
    let path = match target {
        SessionTarget::Id(id) => auth::session_file(session_path, id)?,
        SessionTarget::Path(path) => path.clone(),
    };
    let session =
        session_store::read_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    print!("{}", session_keys_report(&session));
    Ok(())
}

fn serve_cgi(args: &Args) -> Result<(), String> {
    match site(args, true) {
        Ok(site) => {
            let answered = cgi::serve_one(|request| handle(request, &site));
            // The process ends now: freeing what it read is wasted work.
            std::mem::forget(site);
            answered
        }
        Err(message) => answer_unset_cgi(&message),
    }
    .map_err(|e| format!("CGI: {e}"))
}

/// A CGI program that exits without a response leaves the admin a blank 500: answer
/// with what to fix instead (no secrets in it, only option names).
fn answer_unset_cgi(message: &str) -> std::io::Result<()> {
    cgi::serve_one(|_| Response::text(500, format!("tokenusage is not set up: {message}\n")))
}

/// The socket to serve: `--listen`, else one passed as fd 0 (taken once: taking it
/// owns the descriptor).
fn listener(args: &Args) -> Result<fastcgi::Listener, String> {
    if let Some(spec) = &args.listen {
        return fastcgi::bind(spec, args.socket_mode)
            .map_err(|e| format!("cannot listen on {spec}: {e}"));
    }
    fastcgi::listener_from_fd0().ok_or_else(|| match args.command {
        // Started bare by hand, most likely: say what the two ways to run are.
        Command::Auto => format!(
            "no FastCGI socket on fd 0 and no CGI environment: \
             use `tokenusage fcgi --listen ...`\n\n{}",
            args::USAGE
        ),
        _ => "no listening socket on fd 0; give --listen unix:/path.sock or HOST:PORT".into(),
    })
}

fn serve_fastcgi(
    args: &Args,
    listener: fastcgi::Listener,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    let site = Arc::new(site(args, false)?);
    let options = fastcgi::ServerOptions {
        workers: args.workers,
        max_connections: args.max_connections,
        head_timeout: args.request_timeout,
        idle_timeout: args.idle_timeout,
        write_timeout: args.write_timeout,
        ..fastcgi::ServerOptions::default()
    };
    let handler: fastcgi::Handler = Arc::new(move |request| handle(request, &site));
    fastcgi::serve(listener, &options, handler, shutdown).map_err(|e| format!("FastCGI: {e}"))
}
