//! Why a start failed: one enum, `Display` in the admin's words and `source()` for the
//! cause. `main` prints it with its cause chain and maps it to an exit code in one match.
//! No I/O.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::auth::AuthError;
use crate::auth::session_store::Refusal;
use crate::view::render::TemplateError;

/// A start that could not go on.
#[derive(Debug)]
pub enum StartError {
    /// The command line or a `TOKENUSAGE_*` variable was refused, or asked for the help or
    /// the version: clap's own message, which clap prints ([`clap::Error::print`]).
    Usage(clap::Error),
    /// The admin check's options do not make a mode.
    Auth(AuthError),
    /// The address to serve on could not be bound.
    Listen { spec: String, source: io::Error },
    /// No `--listen` and no listening socket on fd 0. `bare`: no subcommand either, so
    /// most likely started by hand.
    NoSocket { bare: bool },
    /// The templates could not be loaded.
    Templates(TemplateError),
    /// The CGI request could not be read or answered.
    Cgi(io::Error),
    /// The FastCGI server could not be set up.
    FastCgi(io::Error),
    /// The demo could not start or run (a development tool's error, kept opaque so the
    /// product does not depend on `dev`).
    Demo(Box<dyn Error + Send + Sync>),
    /// `session-keys` could not read the session file.
    SessionKeys { path: PathBuf, source: Refusal },
    /// What a command prints could not be written (stdout closed).
    Output(io::Error),
    /// `--access-log` could not be opened.
    AccessLog { path: PathBuf, source: io::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Usage(error) => f.write_str(&usage_text(error)),
            StartError::Auth(error) => error.fmt(f),
            StartError::Listen { spec, .. } => write!(f, "cannot listen on {spec}"),
            StartError::NoSocket { bare: true } => f.write_str(
                "no FastCGI socket on fd 0 (nor from systemd's LISTEN_FDS) and no CGI \
                 environment: run `tokenusage fcgi --listen unix:/path.sock` (or \
                 HOST:PORT), or see `tokenusage --help`",
            ),
            StartError::NoSocket { bare: false } => f.write_str(
                "no listening socket on fd 0 (nor from systemd's LISTEN_FDS); give --listen \
                 unix:/path.sock or HOST:PORT",
            ),
            StartError::Templates(error) => error.fmt(f),
            StartError::Cgi(_) => f.write_str("cannot answer the CGI request"),
            StartError::FastCgi(_) => f.write_str("cannot run the FastCGI server"),
            StartError::Demo(_) => f.write_str("demo"),
            StartError::SessionKeys { path, .. } => {
                write!(f, "{}: cannot read the session", path.display())
            }
            StartError::Output(_) => f.write_str("cannot write the output"),
            StartError::AccessLog { path, .. } => {
                write!(f, "--access-log {}: cannot open it", path.display())
            }
        }
    }
}

impl Error for StartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // Shown as they are: their own causes follow.
            StartError::Auth(error) => error.source(),
            StartError::Templates(error) => error.source(),
            StartError::Listen { source, .. } => Some(source),
            StartError::Cgi(source) | StartError::FastCgi(source) | StartError::Output(source) => {
                Some(source)
            }
            StartError::SessionKeys { source, .. } => Some(source),
            StartError::AccessLog { source, .. } => Some(source),
            StartError::Usage(_) | StartError::NoSocket { .. } => None,
            StartError::Demo(e) => Some(e.as_ref()),
        }
    }
}

impl From<AuthError> for StartError {
    fn from(error: AuthError) -> Self {
        StartError::Auth(error)
    }
}

impl From<TemplateError> for StartError {
    fn from(error: TemplateError) -> Self {
        StartError::Templates(error)
    }
}

/// clap's message without its `error: ` and its pointer to `--help`, for a CGI answer.
fn usage_text(error: &clap::Error) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.lines()
        .filter(|line| !line.starts_with("For more information, try"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_error_says_where_and_gives_the_system_s_reason_as_its_cause() {
        let error = StartError::Listen {
            spec: "127.0.0.1:9000".into(),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert_eq!(error.to_string(), "cannot listen on 127.0.0.1:9000");
        let cause = error.source().unwrap().to_string();
        assert!(cause.contains("in use"), "{cause}");
    }

    #[test]
    fn an_auth_error_reads_as_itself() {
        let error = StartError::from(AuthError::MissingSessionKey);
        assert!(
            error
                .to_string()
                .contains("tokenusage session-keys --session-id")
        );
        assert!(error.source().is_none());
    }

    #[test]
    fn a_usage_error_reads_without_clap_s_prefix_and_pointer_to_help() {
        let error = clap::Command::new("tokenusage")
            .try_get_matches_from(["tokenusage", "--bogus"])
            .unwrap_err();
        let text = StartError::Usage(error).to_string();
        assert!(text.starts_with("unexpected argument '--bogus'"), "{text}");
        assert!(!text.contains("For more information"), "{text}");
    }
}
