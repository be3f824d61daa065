//! The `kraftwerk` binary: `kraftwerk` (single node, no setup), `kraftwerk --config server.properties`,
//! `kraftwerk format` and `kraftwerk random-uuid`, mirroring kafka-server-start.sh and kafka-storage.sh.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kraftwerk_broker::config::{env_overrides, BrokerConfig};
use kraftwerk_broker::{format_scram, meta_properties, server};

#[derive(Parser, Debug)]
#[command(
    name = "kraftwerk",
    version,
    about = "A Kafka-compatible broker in KRaft mode"
)]
struct Cli {
    /// server.properties with Kafka's keys. Without it, a single combined node serves PLAINTEXT on
    /// 127.0.0.1:9092 with data under ./data, formatted on first start.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// key=value pairs applied after the file and the environment (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE", global = true)]
    overrides: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write meta.properties into every log directory (like `kafka-storage.sh format`).
    Format {
        #[arg(long, short = 't', allow_hyphen_values = true)]
        cluster_id: String,
        /// Skip directories that are already formatted instead of failing.
        #[arg(long, short = 'g')]
        ignore_formatted: bool,
        /// A SCRAM credential for the bootstrap metadata, as kafka-storage takes it:
        /// 'SCRAM-SHA-256=[name=admin,password=admin-secret]' (optional iterations=, salt=). Repeatable.
        #[arg(long = "add-scram", short = 'S', value_name = "CREDENTIAL")]
        add_scram: Vec<String>,
    },
    /// Print a new random cluster id (like `kafka-storage.sh random-uuid`).
    RandomUuid,
}

fn main() -> ExitCode {
    // Levels from RUST_LOG, changeable at run time (BROKER_LOGGER configs).
    kraftwerk_broker::log_levels::install();
    let cli = Cli::parse();
    let env = env_overrides(std::env::vars());
    match cli.command {
        Some(Command::RandomUuid) => {
            println!("{}", meta_properties::random_uuid());
            ExitCode::SUCCESS
        }
        Some(Command::Format {
            cluster_id,
            ignore_formatted,
            add_scram,
        }) => {
            let config = match BrokerConfig::load(cli.config.as_deref(), env, &cli.overrides) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            let mut credentials = Vec::new();
            for arg in &add_scram {
                match format_scram::parse(arg, &format_scram::random_salt()) {
                    Ok(c) => credentials.push(c),
                    Err(e) => return fail(&e.to_string()),
                }
            }
            let mut dirs = config.log_dirs.clone();
            if !dirs.contains(&config.metadata_dir()) {
                dirs.push(config.metadata_dir());
            }
            match meta_properties::format(&dirs, &cluster_id, config.node_id, ignore_formatted) {
                Ok(done) => {
                    // As kafka-storage: the bootstrap metadata goes to the metadata log directory.
                    if !credentials.is_empty() && done.contains(&config.metadata_dir()) {
                        let records = kraftwerk_controller::bootstrap::records(&credentials);
                        if let Err(e) =
                            kraftwerk_controller::bootstrap::write(&config.metadata_dir(), &records)
                        {
                            return fail(&e.to_string());
                        }
                    }
                    for d in done {
                        println!(
                            "Formatting {} with metadata.version for cluster {cluster_id}.",
                            d.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        None => {
            let default_mode = cli.config.is_none();
            let config = match BrokerConfig::load(cli.config.as_deref(), env, &cli.overrides) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            // num.network.threads + num.io.threads: one pool does both (tokio reads sockets on its workers).
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            let workers = config.worker_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            builder.worker_threads(workers);
            builder.thread_name_fn(runtime_thread_namer(workers));
            let runtime = match builder.enable_all().build() {
                Ok(r) => r,
                Err(e) => return fail(&format!("cannot start the runtime: {e}")),
            };
            match runtime.block_on(server::run(config, default_mode)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}")),
            }
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    tracing::error!("{msg}");
    eprintln!("kraftwerk: {msg}");
    ExitCode::FAILURE
}

/// Names the runtime's threads so a profile (`top -H`, `perf sched`) tells the async workers, which serve every
/// connection and must never block, from the blocking pool, where fsyncs and other disk waits belong. tokio
/// starts its `workers` worker threads first, while the runtime is built, so the first `workers` names go to
/// them; every later thread is a blocking-pool thread.
fn runtime_thread_namer(workers: usize) -> impl Fn() -> String + Send + Sync + 'static {
    let started = std::sync::atomic::AtomicUsize::new(0);
    move || {
        let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < workers {
            format!("kw-async-{n}")
        } else {
            "kw-blocking".to_string()
        }
    }
}
