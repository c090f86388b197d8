//! Lines gathered to be decoded together.
//!
//! Decoding and validating is most of an ingest's work, and lines do not depend on each other
//! until duplicates are matched, so a batch of lines is decoded on two threads; the sink then
//! matches duplicates in line order.

use deploylens_model::batch::Location;
use deploylens_model::{Event, LineOrigin, Reject, decode_line};

/// The outcome of one line: an event and its id, a blank line, or a reject.
pub(crate) type Decoded<'a> = Result<Option<(Event<'a>, u128)>, Reject>;

/// The bytes of many lines laid end to end, and where each came from.
#[derive(Default)]
pub(crate) struct LineBatch {
    bytes: Vec<u8>,
    pub(crate) lines: Vec<GatheredLine>,
}

/// One gathered line: its bytes in the batch and its place in its file.
pub(crate) struct GatheredLine {
    start: usize,
    end: usize,
    line: u64,
    offset: u64,
}

impl GatheredLine {
    pub(crate) fn at<'f>(&self, file: &'f str) -> Location<'f> {
        Location {
            file,
            line: self.line,
            offset: self.offset,
        }
    }
}

impl LineBatch {
    /// Decode once this many bytes are gathered.
    const BYTES: usize = 1 << 20;
    /// Below this many lines, a second thread costs more than it saves.
    pub(crate) const SPLIT_LINES: usize = 512;

    pub(crate) fn push(&mut self, bytes: &[u8], line: u64, offset: u64) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.lines.push(GatheredLine {
            start,
            end: self.bytes.len(),
            line,
            offset,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.bytes.len() >= Self::BYTES
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn bytes_of(&self, l: &GatheredLine) -> &[u8] {
        &self.bytes[l.start..l.end]
    }

    /// The same buffers, emptied, for the next lines.
    pub(crate) fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.lines.clear();
        self
    }

    pub(crate) fn decode<'a>(&'a self, repository: &str) -> Vec<Decoded<'a>> {
        let decode = |lines: &[GatheredLine]| -> Vec<Decoded<'a>> {
            lines
                .iter()
                .map(|l| {
                    let origin = LineOrigin {
                        inferred_repository: repository,
                    };
                    decode_line(self.bytes_of(l), origin).map(|e| {
                        e.map(|e| {
                            let id = e.id();
                            (e, id)
                        })
                    })
                })
                .collect()
        };
        if self.lines.len() < Self::SPLIT_LINES {
            return decode(&self.lines);
        }
        let (first, second) = self.lines.split_at(self.lines.len() / 2);
        let (mut out, rest) = side_by_side(|| decode(first), || decode(second));
        out.extend(rest);
        out
    }
}

/// Runs `a` here and `b` on a second thread, and returns both results (a panic in `b` is
/// raised here).
pub(crate) fn side_by_side<A, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let here = a();
        match other.join() {
            Ok(there) => (here, there),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
