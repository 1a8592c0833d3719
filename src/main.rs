//! Picks the mode (FastCGI, CGI, demo, sample API, session keys) from the command line,
//! and maps a start error to an exit code in one match.

use std::error::Error;
use std::ffi::OsString;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokenusage::app::{Site, SiteOptions, handle};
use tokenusage::auth::session_store;
use tokenusage::auth::{self, Auth};
use tokenusage::cli::{
    self, Command, DemoArgs, SampleApiArgs, ServeArgs, SessionKeysArgs, SessionTarget,
};
use tokenusage::data::license_api::{ApiClient, client};
use tokenusage::dev::demo;
use tokenusage::dev::sample_api;
use tokenusage::error::StartError;
use tokenusage::ops;
use tokenusage::php::session::session_keys_report;
use tokenusage::transport::access_log::AccessLog;
use tokenusage::transport::request::Request;
use tokenusage::transport::response::Response;
use tokenusage::transport::{cgi, fastcgi, signals, systemd};

fn main() -> ExitCode {
    // glibc gives each busy thread its own malloc arena and keeps what they free: with 16
    // workers over 100 installations that doubled the peak RSS. Two arenas suffice.
    // SAFETY: mallopt only sets an allocator parameter, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    match start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            exit_code(&error)
        }
    }
}

/// 0 after the help or the version, 2 for a command line or a variable refused, 1 for a
/// start that failed.
fn exit_code(error: &StartError) -> ExitCode {
    match error {
        StartError::Usage(usage) => ExitCode::from(u8::try_from(usage.exit_code()).unwrap_or(2)),
        StartError::Auth(_)
        | StartError::Listen { .. }
        | StartError::NoSocket { .. }
        | StartError::Templates(_)
        | StartError::Cgi(_)
        | StartError::FastCgi(_)
        | StartError::Demo(_)
        | StartError::SessionKeys { .. }
        | StartError::Output(_)
        | StartError::AccessLog { .. } => ExitCode::FAILURE,
    }
}

/// Prints the error with its causes on stderr; clap prints its own (the help on stdout).
fn report(error: &StartError) {
    if let StartError::Usage(usage) = error {
        let _ = usage.print();
        return;
    }
    eprintln!("tokenusage: error: {error}");
    let mut cause = error.source();
    while let Some(error) = cause {
        eprintln!("  caused by: {error}");
        cause = error.source();
    }
}

fn start() -> Result<(), StartError> {
    // `args_os`: under CGI the arguments are a visitor's decoded query string, and
    // `std::env::args` would panic on one that is not UTF-8.
    let argv: Vec<OsString> = std::env::args_os().collect();
    let words: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let gateway_interface = std::env::var_os("GATEWAY_INTERFACE").is_some();
    if let Some(ignored) = cli::cgi_request(&words, gateway_interface) {
        if let Some(note) = cli::ignored_arguments_note(ignored) {
            eprintln!("tokenusage: {note}");
        }
        return match cli::parse_cgi() {
            Ok(serve) => serve_cgi(&serve),
            Err(usage) => {
                let error = StartError::Usage(usage);
                // Answer with what to fix rather than leave the admin a blank 500.
                let _ = answer_unset_cgi(&error);
                Err(error)
            }
        };
    }
    let cli = match cli::parse(argv) {
        Ok(cli) => cli,
        // The Monitoring Plugins guidelines reserve 3 (UNKNOWN) for refused arguments.
        Err(usage) if cli::is_check(&words) && usage.use_stderr() => {
            print!("{}", ops::check::usage_line(&usage.to_string()));
            let _ = usage.print();
            exit_with(ops::check::Status::Unknown.code())
        }
        Err(usage) => return Err(StartError::Usage(usage)),
    };
    match cli.command {
        None if cli.test_config => check_config(&cli::check_config_options(&cli.serve, false)),
        None => serve_fastcgi(&cli.serve, true),
        Some(Command::Fcgi(serve)) => serve_fastcgi(&serve, false),
        // `cgi_request` took every start with `cgi` first but `cgi --help`, which clap
        // answered: this is here for the match to be whole.
        Some(Command::Cgi(serve)) => serve_cgi(&serve),
        Some(Command::Demo(args)) => run_demo(&args),
        Some(Command::SampleApi(args)) => run_sample_api(&args),
        Some(Command::SessionKeys(args)) => session_keys(&args),
        Some(Command::CheckConfig(args)) => check_config(&args.options()),
        Some(Command::Check(args)) => {
            exit_with(ops::check::run(&args.options(), &mut io::stdout().lock()))
        }
        Some(Command::Metrics(args)) => {
            exit_with(ops::metrics::run(&args.options(), &mut io::stdout().lock()))
        }
        Some(Command::Notify(args)) => {
            exit_with(ops::notify::run(&args.options(), &mut io::stdout().lock()))
        }
        Some(Command::Report(args)) => {
            exit_with(ops::report::run(&args.options(), &mut io::stdout().lock()))
        }
        Some(Command::Man) => cli::man_page(&mut io::stdout().lock()).map_err(StartError::Output),
    }
}

/// `check-config` and `tokenusage -t`: exits 0 when every check passes, else 1.
fn check_config(options: &ops::check_config::CheckConfigOptions) -> Result<(), StartError> {
    exit_with(ops::check_config::run(options, &mut io::stdout().lock()))
}

/// Ends the process with a command's own status (the checks' 0 to 3); stdout is flushed
/// by `std::process::exit`'s runtime cleanup, and the commands flush their writer.
fn exit_with(code: u8) -> ! {
    std::process::exit(i32::from(code))
}

fn site(serve: &ServeArgs, one_request: bool) -> Result<Site, StartError> {
    let auth = Auth::new(&serve.auth.options())?;
    match auth {
        Auth::None => eprintln!(
            "tokenusage: warning: --auth none: anyone who reaches this URL sees the dashboard"
        ),
        Auth::WebServer => eprintln!("tokenusage: warning: {}", auth::WEB_SERVER_WARNING),
        _ => {}
    }
    let api = ApiClient::new(
        serve.api_connect_timeout,
        serve.api_timeout,
        client::MAX_BODY_BYTES,
    );
    Ok(Site::new(SiteOptions {
        root: serve.root.clone(),
        templates: serve.templates.clone(),
        api,
        account_ttl: serve.account_cache_seconds,
        api_patience: serve.api_patience,
        api_retry_after: serve.api_retry_after,
        memo_budget: serve.memory_budget_mb * 1024 * 1024,
        timezone: serve.timezone,
        one_request,
        ..SiteOptions::new(auth)
    })?)
}

/// Lists a session's keys and value types, values hidden.
fn session_keys(args: &SessionKeysArgs) -> Result<(), StartError> {
    let path = match args.target() {
        SessionTarget::Id(id) => auth::session_file(&args.session_path, &id)?,
        SessionTarget::Path(path) => path,
    };
    let session = session_store::read_path(&path)
        .map_err(|source| StartError::SessionKeys { path, source })?;
    print!("{}", session_keys_report(&session));
    Ok(())
}

fn run_demo(args: &DemoArgs) -> Result<(), StartError> {
    let root = args.root.clone().unwrap_or_else(demo::default_root);
    demo::run(&demo::DemoOptions {
        root: &root,
        listen: &args.listen,
        api_listen: args.api_listen.as_deref(),
        transactions: args.transactions,
    })
    .map_err(|e| StartError::Demo(Box::new(e)))
}

/// Prints the sample API's URL on stdout and serves until SIGTERM or SIGINT.
fn run_sample_api(args: &SampleApiArgs) -> Result<(), StartError> {
    sample_api::run(&args.listen, args.options()).map_err(|source| StartError::Listen {
        spec: args.listen.clone(),
        source,
    })
}

fn serve_cgi(serve: &ServeArgs) -> Result<(), StartError> {
    match site(serve, true) {
        Ok(site) => {
            let answered = cgi::serve_one(|request| handle(request, &site));
            // The process ends now: freeing what it read is wasted work.
            std::mem::forget(site);
            answered.map_err(StartError::Cgi)
        }
        Err(error) => {
            // The request is answered (with what to fix); the web server's log says why.
            report(&error);
            answer_unset_cgi(&error).map_err(StartError::Cgi)
        }
    }
}

/// A CGI program that exits without a response leaves the admin a blank 500: answer
/// with what to fix instead (no secrets in it, only option names; no causes).
fn answer_unset_cgi(error: &StartError) -> io::Result<()> {
    cgi::serve_one(|_| Response::text(500, format!("tokenusage is not set up: {error}\n")))
}

/// The socket to serve: `--listen`, else the one systemd passed as fd 3 (LISTEN_FDS),
/// else one passed as fd 0 (taken once: taking it owns the descriptor). `bare`: started
/// without a subcommand. Called before any thread starts (it unsets LISTEN_*).
fn listener(serve: &ServeArgs, bare: bool) -> Result<fastcgi::Listener, StartError> {
    // SAFETY: no other thread runs yet: the workers start in `fastcgi::serve`.
    let passed = unsafe { systemd::take_passed_sockets() };
    if let Some(spec) = &serve.listen {
        let listen_error = |source| StartError::Listen {
            spec: spec.clone(),
            source,
        };
        let file = socket_file(serve).map_err(listen_error)?;
        return fastcgi::bind_socket_file(spec, &file).map_err(listen_error);
    }
    if passed > 0 {
        return systemd::listener().map_err(|source| StartError::Listen {
            spec: "the socket systemd passed (LISTEN_FDS)".into(),
            source,
        });
    }
    fastcgi::listener_from_fd0().ok_or(StartError::NoSocket { bare })
}

/// The owner, group and mode of a unix socket `--listen` creates.
fn socket_file(serve: &ServeArgs) -> io::Result<fastcgi::SocketFile> {
    let owner = serve.socket_owner.as_deref().map(fastcgi::user_id);
    let group = serve.socket_group.as_deref().map(fastcgi::group_id);
    Ok(fastcgi::SocketFile {
        mode: serve.socket_mode,
        owner: owner.transpose()?,
        group: group.transpose()?,
    })
}

fn serve_fastcgi(serve: &ServeArgs, bare: bool) -> Result<(), StartError> {
    // Handlers first: a signal that arrives once the socket exists must find them.
    let shutdown: Arc<AtomicBool> = signals::shutdown_flag();
    let listener = listener(serve, bare)?;
    let site = Arc::new(site(serve, false)?);
    let options = fastcgi::ServerOptions {
        workers: serve.workers,
        max_connections: serve.max_connections,
        allowed_clients: serve.allow_clients.clone(),
        head_timeout: serve.request_timeout,
        idle_timeout: serve.idle_timeout,
        write_timeout: serve.write_timeout,
        ..fastcgi::ServerOptions::default()
    };
    let access_log = access_log(serve)?;
    let handler: fastcgi::Handler = Arc::new(move |request| logged(&access_log, request, &site));
    fastcgi::serve(listener, &options, handler, shutdown).map_err(StartError::FastCgi)
}

/// The `--access-log`, opened once.
fn access_log(serve: &ServeArgs) -> Result<Option<AccessLog>, StartError> {
    serve
        .access_log
        .as_deref()
        .map(|path| {
            AccessLog::open(path).map_err(|source| StartError::AccessLog {
                path: path.to_path_buf(),
                source,
            })
        })
        .transpose()
}

/// Answers a request, with its line in the access log when there is one.
fn logged(log: &Option<AccessLog>, request: &Request, site: &Site) -> Response {
    let Some(log) = log else {
        return handle(request, site);
    };
    let started = std::time::Instant::now();
    let response = handle(request, site);
    let now = chrono::Utc::now().timestamp();
    log.record(now, request, &response, started.elapsed());
    response
}
