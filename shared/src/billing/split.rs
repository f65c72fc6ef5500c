//! The CSV splitter of files read from their bytes (UTF-8 and the
//! single-byte code pages): one pass per chunk that drops or converts CRs,
//! guards the line length and splits records, skipping with `memchr` over
//! the runs that cannot end a field. It reads exactly as the csv crate
//! behind the CR filter and the line guard did (`source::visit_records`,
//! still used for decoded streams): the same records, cells, line numbers
//! and errors, down to the chunk at which an overlong line is noticed (a
//! proptest compares the two on random bytes).

use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;

use super::source::{CsvShape, FileProblem, MAX_COLUMNS, visit_records};

/// A record's cells: `bytes` holds them end to end, `ends[i]` is where cell
/// `i` ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub(super) fn new(bytes: &'a [u8], ends: &'a [usize]) -> Self {
        Self { bytes, ends }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn get(&self, index: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records: line ends here are blank lines.
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: closing, or the first of `""`.
    QuoteInQuoted,
}

/// How the file is cut and how long a line may be (the reader's constants;
/// tests make them small).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Bytes per read of the file: the line guard weighs the open line at
    /// the end of each read, as before.
    pub chunk: usize,
    pub max_line: usize,
}

/// The CSV options of the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub delimiter: u8,
    /// Lines end in a bare CR: every CR is a line end. Otherwise CRs are
    /// dropped wherever they are.
    pub cr_only: bool,
}

struct Splitter {
    delimiter: u8,
    cr_only: bool,
    state: State,
    /// 1 + the line ends read so far, as the csv crate counts them.
    line: u64,
    /// The line the next record is numbered with: the csv crate numbers a
    /// record with the line after the record before it (blank lines
    /// between them do not count).
    record_line: u64,
    /// Cells of the records completed in this chunk, then of the open one.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Completed records: line, and their range in `ends`.
    records: Vec<(u64, usize, usize)>,
    /// Where the open record's cells start in `ends` and `bytes`.
    open_ends: usize,
    open_bytes: usize,
}

impl Splitter {
    fn end_field(&mut self) {
        self.ends.push(self.bytes.len() - self.open_bytes);
    }

    fn end_record(&mut self) {
        self.end_field();
        self.records.push((self.record_line, self.open_ends, self.ends.len()));
        self.open_ends = self.ends.len();
        self.open_bytes = self.bytes.len();
        self.state = State::StartRecord;
    }

    fn is_line_end(&self, byte: u8) -> bool {
        byte == b'\n' || (self.cr_only && byte == b'\r')
    }

    /// An unquoted field from `at` on: up to the delimiter or line end that
    /// ends it, taken too. Returns where reading goes on, and whether a line
    /// ended just before.
    fn in_field(&mut self, chunk: &[u8], at: usize) -> (usize, bool) {
        let rest = chunk.get(at..).unwrap_or_default();
        let Some(found) = memchr::memchr3(self.delimiter, b'\n', b'\r', rest) else {
            self.bytes.extend_from_slice(rest);
            return (chunk.len(), false);
        };
        self.bytes.extend_from_slice(rest.get(..found).unwrap_or_default());
        let after = at + found + 1;
        let byte = rest.get(found).copied().unwrap_or_default();
        if byte == self.delimiter {
            self.end_field();
            self.state = State::StartField;
            (after, false)
        } else if self.is_line_end(byte) {
            self.end_line();
            (after, true)
        } else if chunk.get(after) == Some(&b'\n') {
            // A CR dropped before an LF: the line ends at the LF, as the
            // next round would find (saving a search on every CRLF row).
            self.end_line();
            (after + 1, true)
        } else {
            // A CR dropped: the field goes on.
            (after, false)
        }
    }

    /// A line end outside quotes after a field: the record is complete.
    fn end_line(&mut self) {
        self.end_record();
        self.line += 1;
        self.record_line = self.line;
    }

    /// Splits `chunk`; returns where the last line end outside quotes is
    /// (just past it), if the chunk has one.
    fn split(&mut self, chunk: &[u8]) -> Option<usize> {
        let delimiter = self.delimiter;
        let mut boundary = None;
        let mut at = 0;
        while let Some(&byte) = chunk.get(at) {
            match self.state {
                State::StartRecord => {
                    if self.is_line_end(byte) {
                        self.line += 1;
                        at += 1;
                        boundary = Some(at);
                    } else if byte == b'\r' {
                        at += 1;
                    } else {
                        self.state = State::StartField;
                    }
                }
                State::StartField | State::QuoteInQuoted => {
                    let quoted = self.state == State::QuoteInQuoted;
                    if byte == b'"' {
                        if quoted {
                            self.bytes.push(b'"');
                        }
                        self.state = State::InQuoted;
                        at += 1;
                    } else if byte == delimiter {
                        self.end_field();
                        self.state = State::StartField;
                        at += 1;
                    } else if self.is_line_end(byte) {
                        self.end_record();
                        self.line += 1;
                        self.record_line = self.line;
                        at += 1;
                        boundary = Some(at);
                    } else if byte == b'\r' {
                        at += 1;
                    } else {
                        // Straight on into the field, without another round.
                        self.state = State::InField;
                        let (next, line_ended) = self.in_field(chunk, at);
                        at = next;
                        if line_ended {
                            boundary = Some(at);
                        }
                    }
                }
                State::InField => {
                    let (next, line_ended) = self.in_field(chunk, at);
                    at = next;
                    if line_ended {
                        boundary = Some(at);
                    }
                }
                State::InQuoted => {
                    let rest = chunk.get(at..).unwrap_or_default();
                    let Some(found) = memchr::memchr3(b'"', b'\n', b'\r', rest) else {
                        self.bytes.extend_from_slice(rest);
                        at = chunk.len();
                        continue;
                    };
                    self.bytes.extend_from_slice(rest.get(..found).unwrap_or_default());
                    at += found + 1;
                    match rest.get(found).copied().unwrap_or_default() {
                        b'"' => self.state = State::QuoteInQuoted,
                        b'\r' if !self.cr_only => {}
                        _ => {
                            // A line end inside quotes is text (a CR one
                            // reads as LF).
                            self.bytes.push(b'\n');
                            self.line += 1;
                        }
                    }
                }
            }
        }
        boundary
    }

    /// The end of the input: an open record is complete.
    fn finish(&mut self) {
        if self.state != State::StartRecord {
            self.end_record();
        }
    }

    /// Visits the completed records, then keeps only the open one.
    fn drain(&mut self, visit: &mut impl FnMut(Record<'_>, u64) -> ControlFlow<()>) -> Result<bool, FileProblem> {
        let mut broke = false;
        let mut start_bytes = 0;
        for &(line, from, to) in &self.records {
            let ends = self.ends.get(from..to).unwrap_or_default();
            let length = ends.last().copied().unwrap_or(0);
            if ends.len() > MAX_COLUMNS {
                return Err(FileProblem::TooManyColumns { line });
            }
            let bytes = self.bytes.get(start_bytes..start_bytes + length).unwrap_or_default();
            start_bytes += length;
            if visit(Record::new(bytes, ends), line).is_break() {
                broke = true;
                break;
            }
        }
        self.records.clear();
        self.bytes.drain(..self.open_bytes);
        self.ends.drain(..self.open_ends);
        self.open_bytes = 0;
        self.open_ends = 0;
        Ok(broke)
    }
}

/// The bytes of `bytes` that count in the line guard's weight: every byte
/// but a dropped CR, plus what its character adds in UTF-8.
fn weight(bytes: &[u8], cr_only: bool, widths: Option<&[u8; 256]>) -> usize {
    let dropped = if cr_only { 0 } else { memchr::memchr_iter(b'\r', bytes).count() };
    let wide = widths
        .map_or(0, |widths| bytes.iter().map(|b| usize::from(widths.get(usize::from(*b)).copied().unwrap_or(0))).sum());
    // A dropped CR adds nothing in any code page (its width is 0).
    bytes.len() - dropped + wide
}

/// Reads the records of `input` (the file past its BOM), calling `visit`
/// with each and its line until it breaks. `widths` (a single-byte
/// encoding) weighs each byte by its size in UTF-8 for the line limit.
///
/// Text that starts with a UTF-8 BOM here (a second one) is read by the
/// csv crate: it skips the BOM where its line guard did not, so the two
/// can see quotes differently from there on.
pub(super) fn visit_split<R: Read + Seek>(
    mut input: R,
    widths: Option<&[u8; 256]>,
    shape: Shape,
    limits: Limits,
    visit: &mut impl FnMut(Record<'_>, u64) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    let mut splitter = Splitter {
        delimiter: shape.delimiter,
        cr_only: shape.cr_only,
        state: State::StartRecord,
        line: 1,
        record_line: 1,
        bytes: Vec::with_capacity(limits.chunk.min(1 << 20) + 1024),
        ends: Vec::new(),
        records: Vec::new(),
        open_ends: 0,
        open_bytes: 0,
    };
    let origin = input.stream_position().map_err(|e| FileProblem::Unreadable(e.to_string()))?;
    let mut buffer = vec![0u8; limits.chunk.max(1)];
    // The bytes of the line still open at the end of the last chunk, as
    // the guard weighs them.
    let mut open_weight = 0usize;
    let mut first = true;
    loop {
        let read =
            input.read(&mut buffer).map_err(|e| FileProblem::Unreadable(format!("строка {}: {e}", splitter.line)))?;
        let Some(chunk) = buffer.get(..read).filter(|c| !c.is_empty()) else {
            break;
        };
        let line_before = splitter.line;
        if first && (shape.cr_only || chunk.iter().any(|b| *b != b'\r')) {
            // The csv crate skips a UTF-8 BOM at the start of what it is
            // first given (the chunk as the CR filter left it).
            first = false;
            let mut kept = chunk.iter().filter(|b| shape.cr_only || **b != b'\r');
            let head = [kept.next(), kept.next(), kept.next()];
            if head == [Some(&0xEF), Some(&0xBB), Some(&0xBF)] {
                // Nothing is visited yet (the chunks before held only CRs).
                input.seek(SeekFrom::Start(origin)).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
                let shape = CsvShape { delimiter: shape.delimiter, cr_only: shape.cr_only };
                return visit_records(input, widths.copied(), shape, limits, visit);
            }
        }
        let boundary = splitter.split(chunk);
        let tail = match boundary {
            Some(at) => {
                open_weight = 0;
                chunk.get(at..).unwrap_or_default()
            }
            None => chunk,
        };
        open_weight += weight(tail, shape.cr_only, widths);
        if open_weight > limits.max_line {
            return Err(FileProblem::LineTooLong { line: line_before });
        }
        if splitter.drain(visit)? {
            return Ok(());
        }
    }
    splitter.finish();
    splitter.drain(visit)?;
    Ok(())
}
