//! Printing query results with the shared encoder of [`deploylens_query::encode`]: a table for
//! people, CSV / JSON / NDJSON for programs.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deploylens_query::encode;

/// `--format` of the commands that print rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
}

impl From<Format> for encode::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => encode::Format::Table,
            Format::Csv => encode::Format::Csv,
            Format::Json => encode::Format::Json,
            Format::Ndjson => encode::Format::Ndjson,
        }
    }
}

pub fn print(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    if terminal {
        encode::write_to_terminal(&mut out, schema, batches, format.into())?;
    } else {
        encode::write(&mut out, schema, batches, format.into())?;
    }
    out.flush()?;
    Ok(())
}
