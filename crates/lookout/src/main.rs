//! `lookout`: command-line entry point. Exit codes: 0 ok, 1 a check failed, 2 usage or config error
//! (`check --nagios`: 0 OK, 2 CRITICAL, 3 UNKNOWN).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use lookout::check::{self, Format};
use lookout_config::Config;

#[derive(Parser)]
#[command(
    name = "lookout",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("LOOKOUT_GIT_COMMIT"), ")"),
    about = "Watches web servers, alerts within seconds when users get errors, and keeps the record."
)]
struct Cli {
    /// Log format for `run` and `demo` (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check once and report: exit 0 if all pass, 1 if any fails, 2 on config errors.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
        /// Only this target (repeatable).
        #[arg(short, long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Print a JSON array instead of a table.
        #[arg(long, conflicts_with = "nagios")]
        json: bool,
        /// Print one Nagios plugin status line with perfdata (exit 0 OK, 2 CRITICAL, 3 UNKNOWN).
        #[arg(long)]
        nagios: bool,
    },
    /// Monitor continuously: probes, alerts and notifications, until SIGINT/SIGTERM (SIGHUP reloads the config).
    Run {
        /// Config file.
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
    },
    /// Ask the running `lookout run` to read its config again (POST /-/reload with the config's web token),
    /// after checking that the file loads. Exit 0 reloaded, 1 refused, 2 config or connection errors.
    Reload {
        /// Config file (the running one's).
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
    },
    /// Analyze access logs after the fact (plain or .gz): totals, status, 5xx over time, failing paths and
    /// error windows with the distinct clients affected.
    Logs {
        /// Access log files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// combined, common, vhost_combined, or an Apache LogFormat string.
        #[arg(long, default_value = "combined")]
        format: String,
        /// Only requests at or after this time (UTC), e.g. 2026-11-25T12:00.
        #[arg(long)]
        since: Option<String>,
        /// Only requests before this time (UTC).
        #[arg(long)]
        until: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// 5xx ratio at which a time bucket belongs to an error window.
        #[arg(long, default_value = "5%")]
        threshold: String,
        /// Fewer requests than this in a bucket never make an error window.
        #[arg(long, default_value_t = 1)]
        min_requests: u64,
        /// Width of the time buckets.
        #[arg(long, default_value = "1m")]
        bucket: String,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// The probable root cause of failing requests, verdict first: what the error log says could not be opened,
    /// read or parsed, with what was probably meant. Exit 0 found, 1 nothing found, 2 usage error.
    Diagnose {
        /// Trace the workers of processes with this name (e.g. apache2; repeatable).
        #[arg(long = "process", value_name = "NAME")]
        processes: Vec<String>,
        /// Trace this process and its children, e.g. the parent of a prefork pool (repeatable).
        #[arg(long = "pid", value_name = "PID")]
        pids: Vec<i32>,
        /// While tracing, send requests to this URL (repeatable), so the failing code path runs; http or https
        /// with a host, checked before tracing starts.
        #[arg(long = "url", value_name = "URL")]
        urls: Vec<String>,
        /// Requests sent to each --url.
        #[arg(long, default_value_t = 5)]
        requests: u32,
        /// How long to trace, from 1ms to 30s (the server slows down while traced: keep it short).
        #[arg(long, default_value = "3s")]
        duration: String,
        /// An error log to read (repeatable: nginx's and PHP-FPM's, say; findings are merged). Also the fallback
        /// when tracing is not possible. Apache, nginx, PHP-FPM and PHP's own error_log are understood.
        #[arg(long = "error-log", value_name = "FILE")]
        error_log: Vec<PathBuf>,
        /// apache, nginx, fpm or php; by default each log's format is recognised from its first lines.
        #[arg(long)]
        error_format: Option<String>,
        /// Only error-log lines at or after this time (UTC), e.g. 2026-11-25T12:00.
        #[arg(long)]
        since: Option<String>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Before deploy: every PHP include and require under PATH resolved like PHP and checked like Linux (exact
    /// case, dangling symlinks, the web server user's permissions). Exit 0 no errors, 1 errors, 2 usage error.
    Preflight {
        /// Files or directories to check (default: `.`, unless only web-server configurations are given).
        paths: Vec<PathBuf>,
        /// A php.ini whose include_path applies (default: `.`).
        #[arg(long, value_name = "FILE")]
        php_ini: Option<PathBuf>,
        /// The web server's user (e.g. www-data): a target it cannot read or reach is an error.
        #[arg(long, value_name = "USER")]
        web_user: Option<String>,
        /// text (like a compiler's), json, sarif (SARIF 2.1.0 for code scanning) or github (Actions annotations).
        #[arg(long, value_enum, default_value_t = lookout::preflight_cmd::Format::Text)]
        format: lookout::preflight_cmd::Format,
        /// Only errors not recorded in this baseline fail (see --write-baseline).
        #[arg(long, value_name = "FILE", conflicts_with = "write_baseline")]
        baseline: Option<PathBuf>,
        /// Record today's errors (file, kind, expression, count; no line numbers) in FILE and exit 0.
        #[arg(long, value_name = "FILE")]
        write_baseline: Option<PathBuf>,
        /// List the includes whose path is known only at run time (always counted).
        #[arg(long)]
        show_unresolved: bool,
        /// An Apache configuration (e.g. /etc/apache2/apache2.conf) whose paths must exist: DocumentRoot, Alias,
        /// DirectoryIndex, logs, TLS files, modules, includes. Repeatable.
        #[arg(long, value_name = "FILE")]
        apache_config: Vec<PathBuf>,
        /// An nginx configuration (e.g. /etc/nginx/nginx.conf): root, alias, index, include, TLS files, logs,
        /// FastCGI socket directories. Repeatable.
        #[arg(long, value_name = "FILE")]
        nginx_config: Vec<PathBuf>,
    },
    /// A postmortem draft (Markdown) of a recorded incident, or of an outage found in the logs (--from-logs), with
    /// measured impact and the root cause.
    Postmortem {
        /// The incident (see `lookout incidents`), e.g. 2026-11-25-site-1.
        #[arg(required_unless_present = "from_logs", conflicts_with = "from_logs")]
        id: Option<String>,
        /// Config file (for the store and the incident's logs).
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
        /// Build it from an access log instead (an outage before lookout was installed).
        #[arg(long = "from-logs", value_name = "ACCESS_LOG")]
        from_logs: Option<PathBuf>,
        /// With --from-logs: the server's error log, for the root cause.
        #[arg(long, requires = "from_logs")]
        error_log: Option<PathBuf>,
        /// With --from-logs: combined, common, vhost_combined, or an Apache LogFormat string.
        #[arg(long, default_value = "combined")]
        format: String,
        /// With --from-logs: only this period, START..END in UTC (e.g. 2026-11-25T12:00..2026-11-25T16:00).
        #[arg(long, requires = "from_logs")]
        window: Option<String>,
        /// Write the draft here instead of stdout (and print its summary).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Incidents: alerts of one group from the first firing to the last resolve, with a timeline. Without a
    /// subcommand, lists them (newest first).
    Incidents {
        /// Config file (for the store).
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG", global = true)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// How many to list.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(subcommand)]
        action: Option<IncidentsCommand>,
    },
    /// The agents sharing the store: location, leader, last heartbeat, version and config hash.
    Agents {
        /// Config file (for the store).
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Silences: alerts matching every matcher (e.g. group=shop, severity!=info, target=~"web-.*") are recorded
    /// but not sent while a silence is in force.
    Silence {
        /// Config file (for the store).
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: SilenceCommand,
    },
    /// The store itself: `copy` moves everything it holds into another (e.g. from SQLite to PostgreSQL).
    Store {
        #[command(subcommand)]
        action: StoreCommand,
    },
    /// The smoke test after a deploy: follow the site's own links (same scheme, host and port) from URL and
    /// fail on a 5xx, a PHP error printed in a page, a page slower than --slow or one that cannot be fetched.
    /// Exit 0 ok, 1 failed, 2 usage error. A linked page's 4xx is a broken link: a warning unless --fail-on-4xx.
    Crawl {
        /// Where to start: http:// or https:// with a host.
        url: String,
        /// Pages fetched at most, the start page included.
        #[arg(long, default_value_t = 200)]
        max_pages: usize,
        /// Requests in flight at once (1 to 64).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// A page taking longer than this (to its last byte) fails the crawl.
        #[arg(long, default_value = "2s")]
        slow: String,
        /// Also fail (exit 1) on linked pages answering 4xx.
        #[arg(long)]
        fail_on_4xx: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a lookout.toml for the web servers running here: Apache, nginx and PHP-FPM are found in /proc and
    /// their configurations read (sites, ports, access and error logs with their formats, status pages, pid
    /// files). Exit 0 written, 1 nothing found, 2 usage errors (an existing file without --force).
    Init {
        /// Where to write it.
        #[arg(short, long, default_value = "lookout.toml", env = "LOOKOUT_CONFIG")]
        config: PathBuf,
        /// Print it instead of writing it.
        #[arg(long)]
        dry_run: bool,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Also read this Apache configuration (repeatable), running or not.
        #[arg(long, value_name = "FILE")]
        apache_config: Vec<PathBuf>,
        /// Also read this nginx configuration (repeatable).
        #[arg(long, value_name = "FILE")]
        nginx_config: Vec<PathBuf>,
        /// Also read this PHP-FPM configuration (repeatable).
        #[arg(long, value_name = "FILE")]
        fpm_config: Vec<PathBuf>,
        /// Only the configurations named: do not look for running servers.
        #[arg(long)]
        no_scan: bool,
    },
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `lookout completions bash > /usr/share/bash-completion/completions/lookout`.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (lookout.1 and one per command, lookout-init.1, …) into DIR.
    ManPages { dir: PathBuf },
    /// A self-contained demo (about 15 s): a site breaks the way it did in the postmortem, lookout alerts.
    Demo {
        /// Keep the demo directory (site, logs, config, database) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// The demo's web shop (used by `lookout demo`).
    #[command(hide = true)]
    DemoSite {
        #[arg(long)]
        root: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long)]
        access_log: Option<PathBuf>,
        #[arg(long)]
        error_log: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Silence what the matchers select, from now (or --start) for --duration (default 1h).
    Add {
        /// Matchers, all of which must match: name=value, name!=value, name=~regex, name!~regex. Names: target,
        /// group, severity, state, and the targets' labels.
        #[arg(required = true)]
        matchers: Vec<String>,
        #[arg(long)]
        duration: Option<String>,
        /// When it starts (UTC), e.g. 2026-11-28T02:00; default now.
        #[arg(long)]
        start: Option<String>,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// The silences in force (with --all, also ended and expired ones).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire { id: i64 },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy everything a store holds (results, alert state, incidents and timelines, the outbox, silences, log
    /// cursors and counts) into another, empty store, then compare the rows of every table: exit 0 when all match,
    /// 1 when a count differs, 2 on errors (a target that already holds data is refused).
    Copy {
        /// The store to read: a SQLite file's path, sqlite:PATH, or postgresql://USER@HOST/DB.
        #[arg(long, value_name = "PATH_OR_URL")]
        from: String,
        /// The empty store to write: a SQLite file's path (created), sqlite:PATH, or postgresql://USER@HOST/DB.
        #[arg(long, value_name = "PATH_OR_URL")]
        to: String,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// One incident: status, diagnosis, measured impact and the whole timeline.
    Show { id: String },
    /// Take the incident: the timeline records who and when.
    Ack {
        id: String,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Add a note to the timeline (it goes into the postmortem).
    Note {
        id: String,
        /// The note; several words are joined.
        #[arg(required = true)]
        text: Vec<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Close the incident by hand (alerts still firing stay attached; a new failure opens a new incident).
    Resolve {
        id: String,
        /// A note recorded with the resolution.
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOKOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours for a terminal only: a file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The process exit code of a command's result: its own code on success, `on_error` (after printing the error
/// chain) on failure.
fn exit_code(result: anyhow::Result<u8>, on_error: u8) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(on_error)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Run { .. }) {
        // Before any thread starts: it may re-execute this process.
        lookout::runtime::bound_malloc_arenas();
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(command(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn command(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { config, targets, json, nagios } => {
            init_tracing(cli.log_format, "warn");
            let format = if json {
                Format::Json
            } else if nagios {
                Format::Nagios
            } else {
                Format::Table
            };
            let config_error = |message: String| {
                if format == Format::Nagios {
                    println!("{}", check::nagios_unknown(&message));
                    ExitCode::from(3)
                } else {
                    eprintln!("error: {message}");
                    ExitCode::from(2)
                }
            };
            // It neither serves nor sends: the web's tokens and the channels' secrets need not be set.
            let config = match Config::load_without_secrets(&config) {
                Ok(c) => c,
                Err(e) => return config_error(e.to_string()),
            };
            let mut reports = match lookout_app::check::run(&config, &targets).await {
                Ok(r) => r,
                Err(e) => return config_error(e),
            };
            lookout::runtime::add_degraded(&mut reports, &config).await;
            match check::print(&reports, format, &mut std::io::stdout().lock()) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: cannot write the report: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run { config: path } => {
            init_tracing(cli.log_format, "info");
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let shutdown = lookout::runtime::shutdown_on_signals();
            let reloads = lookout::runtime::Reloads::new(path);
            lookout::runtime::reload_on_sighup(reloads.tx.clone());
            exit_code(lookout::runtime::run_reloading(config, shutdown, None, Some(reloads)).await.map(|()| 0), 1)
        }
        Command::Reload { config } => {
            let mut out = std::io::stdout().lock();
            exit_code(lookout_app::reload::ask(&config, &mut out).await, 2)
        }
        Command::Logs { files, format, since, until, json, threshold, min_requests, bucket, threads } => {
            init_tracing(cli.log_format, "warn");
            let args = lookout::logs_cmd::LogsArgs {
                files,
                format,
                since,
                until,
                json,
                threshold,
                min_requests,
                bucket,
                threads,
            };
            exit_code(lookout::logs_cmd::run(args, &mut std::io::stdout().lock()), 2)
        }
        Command::Diagnose { processes, pids, urls, requests, duration, error_log, error_format, since, json } => {
            init_tracing(cli.log_format, "warn");
            let args = lookout::diagnose_cmd::DiagnoseArgs {
                error_log,
                error_format,
                since,
                json,
                processes,
                pids,
                urls,
                requests,
                duration,
            };
            let mut stdout = std::io::stdout();
            exit_code(lookout::diagnose_cmd::run(args, &mut stdout).await.map(|found| if found { 0 } else { 1 }), 2)
        }
        Command::Preflight {
            apache_config,
            nginx_config,
            paths,
            php_ini,
            web_user,
            format,
            show_unresolved,
            baseline,
            write_baseline,
        } => {
            let args = lookout::preflight_cmd::PreflightArgs {
                apache_configs: apache_config,
                nginx_configs: nginx_config,
                paths,
                php_ini,
                web_user,
                format,
                show_unresolved,
                baseline,
                write_baseline,
            };
            exit_code(lookout::preflight_cmd::run(args, &mut std::io::stdout().lock()), 2)
        }
        Command::Postmortem { id, config, from_logs, error_log, format, window, output } => {
            init_tracing(cli.log_format, "warn");
            let to_file = output.is_some();
            let mut stdout = std::io::stdout();
            let summary = match (id, from_logs) {
                (_, Some(access_log)) => {
                    let args =
                        lookout::postmortem_cmd::PostmortemArgs { access_log, error_log, format, window, output };
                    lookout::postmortem_cmd::from_logs(args, &mut stdout)
                }
                (Some(id), None) => {
                    lookout::postmortem_cmd::from_incident(&config, &id, output.as_deref(), &mut stdout).await
                }
                (None, None) => {
                    Err(anyhow::anyhow!("name an incident (lookout postmortem ID) or --from-logs ACCESS_LOG"))
                }
            };
            let result = summary.map(|summary| {
                if to_file {
                    println!("{summary}");
                }
                0
            });
            exit_code(result, 2)
        }
        Command::Incidents { config, json, limit, action } => {
            init_tracing(cli.log_format, "warn");
            use lookout::incidents_cmd::{Action, default_actor};
            let action = match action {
                None => Action::List { json, limit },
                Some(IncidentsCommand::Show { id }) => Action::Show { id, json },
                Some(IncidentsCommand::Ack { id, by }) => Action::Ack { id, by: by.unwrap_or_else(default_actor) },
                Some(IncidentsCommand::Note { id, text, by }) => {
                    Action::Note { id, text: text.join(" "), by: by.unwrap_or_else(default_actor) }
                }
                Some(IncidentsCommand::Resolve { id, note, by }) => {
                    Action::Resolve { id, note, by: by.unwrap_or_else(default_actor) }
                }
            };
            exit_code(lookout::incidents_cmd::run(&config, action, &mut std::io::stdout().lock()).await, 2)
        }
        Command::Agents { config, json } => {
            init_tracing(cli.log_format, "warn");
            exit_code(lookout::agents_cmd::run(&config, json, &mut std::io::stdout().lock()).await, 2)
        }
        Command::Silence { config, action } => {
            init_tracing(cli.log_format, "warn");
            use lookout::silence_cmd::Action;
            let action = match action {
                SilenceCommand::Add { matchers, duration, start, comment, by } => Action::Add {
                    matchers,
                    duration,
                    start,
                    comment,
                    by: by.unwrap_or_else(lookout::incidents_cmd::default_actor),
                },
                SilenceCommand::List { all, json } => Action::List { all, json },
                SilenceCommand::Expire { id } => Action::Expire { id },
            };
            exit_code(lookout::silence_cmd::run(&config, action, &mut std::io::stdout().lock()).await, 2)
        }
        Command::Store { action: StoreCommand::Copy { from, to, json } } => {
            init_tracing(cli.log_format, "warn");
            let args = lookout::store_cmd::CopyArgs { from, to, json };
            exit_code(lookout::store_cmd::copy(args, &mut std::io::stdout().lock()).await, 2)
        }
        Command::Crawl { url, max_pages, concurrency, slow, fail_on_4xx, json } => {
            init_tracing(cli.log_format, "warn");
            let args = lookout::crawl_cmd::CrawlArgs { url, max_pages, concurrency, slow, fail_on_4xx, json };
            exit_code(lookout::crawl_cmd::run(args, &mut std::io::stdout().lock()).await, 2)
        }
        Command::Init { config, dry_run, force, apache_config, nginx_config, fpm_config, no_scan } => {
            init_tracing(cli.log_format, "warn");
            let options = lookout_app::init::Options {
                apache_configs: apache_config,
                nginx_configs: nginx_config,
                fpm_configs: fpm_config,
                scan_processes: !no_scan,
            };
            let args = lookout_app::init::command::InitArgs { config, dry_run, force, options };
            exit_code(lookout_app::init::command::run(&args, &mut std::io::stdout().lock()), 2)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lookout", &mut std::io::stdout().lock());
            ExitCode::SUCCESS
        }
        Command::ManPages { dir } => exit_code(lookout::man_pages::write(Cli::command(), &dir), 2),
        Command::Demo { keep } => {
            init_tracing(cli.log_format, "error");
            let result = lookout::demo::run(lookout::demo::DemoOptions { keep }).await;
            exit_code(result.map(|()| 0).map_err(|e| e.context("the demo failed")), 1)
        }
        Command::DemoSite { root, listen, access_log, error_log } => {
            init_tracing(cli.log_format, "warn");
            let opts = lookout::demo_site::SiteOptions { root, listen, access_log, error_log };
            exit_code(lookout::demo_site::run(opts).await.map(|()| 0), 1)
        }
    }
}
