//! `deploylens store`: convert a data directory of an earlier version, and show the history of
//! the tables (the versions `--as-of-version` takes).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::Global;

#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub what: StoreWhat,
}

#[derive(Subcommand)]
pub enum StoreWhat {
    /// Convert a data directory of an earlier version (store/commit-*) into Delta tables;
    /// `ingest` and `serve` do it on their own on first open
    Migrate {
        /// The collector whose read positions the old store's become (default: the host name)
        #[arg(long, env = "DEPLOYLENS_COLLECTOR_ID")]
        collector_id: Option<String>,
    },
    /// The versions of the events table, newest first, with what each commit did
    History {
        /// How many versions
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

pub async fn run(g: &Global, args: StoreArgs) -> anyhow::Result<ExitCode> {
    let location = g.location()?;
    match args.what {
        StoreWhat::Migrate { collector_id } => {
            let collector =
                collector_id.unwrap_or_else(deploylens_store::WriterOptions::default_collector_id);
            if deploylens_store::legacy::migrate_if_needed(&location, &collector).await? {
                println!("converted {location} to Delta tables (the old folder is kept as store.migrated/)");
            } else {
                println!("{location}: nothing to convert");
            }
        }
        StoreWhat::History { limit } => {
            for line in deploylens_store::history(&location, limit).await? {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
