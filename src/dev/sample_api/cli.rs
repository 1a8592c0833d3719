//! `tokenusage sample-api`'s own flags, until the command line moves to clap: pure
//! parsing of what follows `sample-api`, then [`super::run`].

use std::time::Duration;

use super::{Fault, SampleApiOptions};

/// What `tokenusage sample-api` was asked for.
#[derive(Debug, Clone, PartialEq)]
struct CliArgs {
    listen: String,
    options: SampleApiOptions,
}

const USAGE: &str = "usage: tokenusage sample-api [--listen ADDR] [--transactions N] \
                     [--balance X] [--delay-ms N] [--hostile] [--fault NAME] [--seed N]";

fn parse_cli(args: &[String]) -> Result<CliArgs, String> {
    let mut parsed = CliArgs {
        listen: "127.0.0.1:8081".into(),
        options: SampleApiOptions::default(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs {what}\n{USAGE}"))
        };
        let bad = |what: &str, v: &str| format!("{flag}: {v:?} is not {what}");
        match flag.as_str() {
            "--listen" => parsed.listen = value("an address")?,
            "--transactions" => {
                let v = value("a count")?;
                parsed.options.transactions = v.parse().map_err(|_| bad("a count", &v))?;
            }
            "--balance" => {
                let v = value("a number")?;
                parsed.options.balance = v
                    .parse::<f64>()
                    .ok()
                    .filter(|b| b.is_finite())
                    .ok_or_else(|| bad("a number", &v))?;
            }
            "--delay-ms" => {
                let v = value("milliseconds")?;
                let ms = v.parse().map_err(|_| bad("milliseconds", &v))?;
                parsed.options.delay = Duration::from_millis(ms);
            }
            "--seed" => {
                let v = value("a number")?;
                parsed.options.seed = v.parse().map_err(|_| bad("a number", &v))?;
            }
            "--fault" => {
                let v = value("a fault name")?;
                parsed.options.fault = Fault::from_name(&v).ok_or_else(|| {
                    let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                    format!("--fault: {v:?} is not one of {}", names.join(", "))
                })?;
            }
            "--hostile" => parsed.options.hostile = true,
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// `tokenusage sample-api [--listen ADDR] [--transactions N] [--balance X] [--delay-ms N]
/// [--hostile] [--fault NAME] [--seed N]` (`args` are those after `sample-api`): prints
/// the URL on stdout and serves until SIGTERM or SIGINT.
pub fn run_cli(args: &[String]) -> Result<(), String> {
    let cli = parse_cli(args)?;
    super::run(&cli.listen, cli.options)
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_flags_set_options() {
        let args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--transactions",
            "50",
            "--balance",
            "0.5",
            "--delay-ms",
            "20",
            "--hostile",
            "--fault",
            "hang",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cli = parse_cli(&args).unwrap();
        assert_eq!(cli.listen, "127.0.0.1:0");
        assert_eq!(cli.options.transactions, 50);
        assert_eq!(cli.options.balance, 0.5);
        assert_eq!(cli.options.delay, Duration::from_millis(20));
        assert!(cli.options.hostile);
        assert_eq!(cli.options.fault, Fault::Hang);
        assert!(parse_cli(&["--transactions".into()]).is_err());
        assert!(parse_cli(&["--balance".into(), "NaN".into()]).is_err());
        assert!(parse_cli(&["--what".into()]).is_err());
    }
}
