//! `mqbench`: produce, consume, end to end, and verify.

mod consume;
mod e2e;
mod produce;
mod report;
mod signals;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Load generator and verifier for the mq message queue.
///
/// Every run ends with a summary: messages and MB per second, failures by
/// kind, latency percentiles; with --json the last line is one JSON object.
#[derive(Debug, Parser)]
#[command(name = "mqbench", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages and measure acknowledgements.
    Produce(ProduceArgs),
    /// Consume messages and measure throughput.
    Consume(ConsumeArgs),
    /// Produce and consume at once; latency is send (born time) to handler.
    E2e(E2eArgs),
    /// Check a consume verify log against a produce verify log.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Nameserver addresses, ';'-separated.
    #[arg(long, env = "MQ_NAMESRV", value_name = "ADDR[;ADDR]")]
    pub namesrv: String,
    /// Topic to use.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Write one JSON line per acknowledged (produce) or received (consume) message.
    #[arg(long, value_name = "FILE")]
    pub verify_log: Option<PathBuf>,
    #[command(flatten)]
    pub connect: crate::connect::ConnectArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: Common,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Messages to send in all.
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Concurrent senders.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Messages per send (SendBatch when above 1).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Target messages per second in all (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Count FLUSH_DISK_TIMEOUT answers (sync flush), FLUSH_SLAVE_TIMEOUT and
    /// SLAVE_NOT_AVAILABLE (sync replication) as failures.
    #[arg(long)]
    pub flush_wait: bool,
    /// Let concurrent sends linger this long to be batched (0: off).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub linger_ms: u64,
    /// Schedule every message this long after its send (0: at once).
    /// Consumers then measure latency from the due time: how late it came.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub delay_ms: u64,
    /// Tag messages t0..t9 and set their property `decile` to 0..9, in
    /// turn: each tag or decile is a tenth, for filter benchmarks
    /// (`consume --tags t3` against `consume --sql "decile = 3"`).
    #[arg(long)]
    pub deciles: bool,
    /// Send every message in a transaction (a half message, then a commit)
    /// with a transactional producer of group `mqbench-tx`.
    #[arg(long)]
    pub transactional: bool,
    /// Do not number sends (the producer's `idempotent` off): a retry of
    /// a send whose answer was lost may then be stored twice.
    #[arg(long)]
    pub no_idempotence: bool,
    /// Time budget of one send, retries included.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub send_timeout_ms: u64,
    /// Requests on the wire to one broker at a time (the producer's
    /// `max_in_flight`): sends beyond wait and leave together.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Consumer group.
    #[arg(long, default_value = "mqbench")]
    pub group: String,
    /// Stop after this many messages (0: run until --timeout).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Consumers in the group.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Read the topic from its first message (default: only new ones).
    #[arg(long)]
    pub from_first: bool,
    /// Messages per pull request (the SDK's `pull_batch`, 1..=1024).
    #[arg(long, default_value_t = 32)]
    pub pull_batch: u32,
    /// Also stop once nothing arrived for this many seconds after the
    /// first message (0: off); for runs whose count is not known up front,
    /// such as a verifiable consumer checked by `mqbench verify`.
    #[arg(long, default_value_t = 0)]
    pub idle: u64,
    /// Subscribe with this tag expression.
    #[arg(long, default_value = "*", conflicts_with = "sql")]
    pub tags: String,
    /// Subscribe with this SQL92 expression over the messages' properties
    /// instead of tags (evaluated on the broker).
    #[arg(long)]
    pub sql: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub produce: ProduceArgs,
    /// Consumer group.
    #[arg(long, default_value = "mqbench-e2e")]
    pub group: String,
    /// Consumers in the group.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Give up waiting for consumers this many seconds after the last send.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Verify log of `mqbench produce`.
    pub produced: PathBuf,
    /// Verify log of `mqbench consume`.
    pub consumed: PathBuf,
}

/// Runs a command; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::E2e(args) => e2e::run(args).await,
        Command::Verify(args) => verify::run(args),
    }
}
