//! Reading a billing export from disk, whatever the billing program made of
//! it: CSV in UTF-8 (with or without BOM), UTF-16, Windows-1251, CP866 or
//! KOI8-R with `;`, tab, `,`
//! or `|`, or XLSX (the sheet that holds the header). The format is read from
//! the content, never from the file name. Rows are visited one at a time, so
//! memory does not grow with the file; hostile files (zip bombs, endless
//! lines, columns past Excel's last) end in a [`FileProblem`], not a crash.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx, open_workbook};
use encoding_rs::{Encoding, IBM866, KOI8_R, UTF_8, WINDOWS_1251};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::columns::MissingColumns;
use super::header::{HEADER_SEARCH_ROWS, Header, HeaderSearch, find_header};
use super::plain::{CodePage, classify_plain};
use super::rows::{RawRow, RowOutcomeRef, classify_ref, is_blank};
use super::split::{Limits, Record, Shape, visit_split};

/// How much of the file is looked at to tell its format and delimiter.
const SNIFF_BYTES: usize = 64 * 1024;
/// Rows after the header looked at to judge a delimiter.
const CONSISTENCY_ROWS: usize = 50;
/// Excel's last column is XFD, the 16,384th.
pub const MAX_COLUMNS: usize = 16_384;
/// A CSV line longer than this is not a billing row (a row is well under
/// 1 KiB); the limit keeps one endless line from filling memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// The longest text between two XML tags in an XLSX: a cell holds at most
/// 32,767 characters (4 bytes each in UTF-8), with room for markup.
const MAX_XML_TEXT_BYTES: usize = 32_767 * 4 + 4096;
/// The read buffers of the CSV reader (file, decoder, parser).
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// The delimiters tried, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b';', b'\t', b',', b'|'];

/// What the reader allows, from the function's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The largest file accepted at all.
    pub max_file_bytes: u64,
    /// The largest unpacked size of the XLSX parts held in memory (shared
    /// strings, styles, workbook), a quarter of the function's memory.
    pub max_xlsx_in_memory_bytes: u64,
    /// The largest unpacked size of all XLSX parts together (sheets are
    /// streamed; this bounds the time a zip bomb can take).
    pub max_xlsx_unpacked_bytes: u64,
}

impl ReadLimits {
    /// Limits for a function with `memory_mib` of memory.
    pub fn for_memory(memory_mib: u64) -> Self {
        let memory = memory_mib.max(128) * 1024 * 1024;
        Self {
            max_file_bytes: 500 * 1000 * 1000,
            max_xlsx_in_memory_bytes: memory / 4,
            max_xlsx_unpacked_bytes: memory * 8,
        }
    }

    /// Limits for this process: Lambda tells its memory size in
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; elsewhere 1 GiB is assumed.
    pub fn from_env() -> Self {
        let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok().and_then(|m| m.parse().ok());
        Self::for_memory(memory.unwrap_or(1024))
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self::for_memory(1024)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `cr_line_ends`: lines end in a bare CR, as old Mac Excel writes them.
    Csv {
        encoding: &'static str,
        delimiter: u8,
        cr_line_ends: bool,
    },
    Xlsx {
        sheet: String,
    },
}

impl Format {
    /// How the report names the format.
    pub fn describe(&self) -> String {
        match self {
            Format::Csv { encoding, delimiter, .. } => {
                let delimiter = match delimiter {
                    b'\t' => "tab".to_owned(),
                    other => char::from(*other).to_string(),
                };
                format!("CSV, {encoding}, delimiter {delimiter}")
            }
            Format::Xlsx { sheet } => format!("XLSX, sheet «{sheet}»"),
        }
    }
}

/// A billing export as found on disk: its format and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub format: Format,
    pub header: Header,
}

/// A problem with the file as a whole: nothing is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Empty,
    OldExcel,
    NotTabular,
    /// No row names the columns; the first lines as read, so the billing
    /// team sees what the importer saw.
    NoHeader {
        first_lines: Vec<String>,
    },
    MissingColumns {
        account: bool,
        full_name: bool,
    },
    TooLarge {
        bytes: u64,
        limit: u64,
    },
    /// An XLSX whose parts unpack to more than the function can hold.
    UnpackedTooLarge {
        part: String,
        limit: u64,
    },
    TooManyColumns {
        line: u64,
    },
    LineTooLong {
        line: u64,
    },
    Unreadable(String),
}

impl FileProblem {
    pub fn code(&self) -> &'static str {
        match self {
            FileProblem::Empty => "empty_file",
            FileProblem::OldExcel => "old_excel_format",
            FileProblem::NotTabular => "not_csv_or_xlsx",
            FileProblem::NoHeader { .. } => "no_header",
            FileProblem::MissingColumns { .. } => "missing_columns",
            FileProblem::TooLarge { .. } => "file_too_large",
            FileProblem::UnpackedTooLarge { .. } => "xlsx_too_large_unpacked",
            FileProblem::TooManyColumns { .. } => "too_many_columns",
            FileProblem::LineTooLong { .. } => "line_too_long",
            FileProblem::Unreadable(_) => "unreadable",
        }
    }

    /// What the billing team is told, in Russian.
    pub fn message(&self) -> String {
        match self {
            FileProblem::Empty => "Файл пустой: в нём нет ни одной строки.".into(),
            FileProblem::OldExcel => {
                "Файл в старом формате Excel (.xls). Сохраните его как «Книга Excel (.xlsx)» или CSV и загрузите снова."
                    .into()
            }
            FileProblem::NotTabular => {
                "Это не таблица CSV и не файл Excel (.xlsx). Выгрузите лицевые счета в CSV или XLSX.".into()
            }
            FileProblem::NoHeader { first_lines } => {
                let mut message = String::from(
                    "Не найдена строка заголовков. Одна из первых 20 строк таблицы должна называть столбцы: «Лицевой счёт», «ФИО», «Адрес», «Сальдо».",
                );
                if !first_lines.is_empty() {
                    message.push_str(" Первые строки файла, как они прочитаны: ");
                    let quoted: Vec<String> = first_lines.iter().map(|l| format!("«{l}»")).collect();
                    message.push_str(&quoted.join("; "));
                    message.push('.');
                }
                message
            }
            FileProblem::MissingColumns { account, full_name } => {
                let mut missing = Vec::new();
                if *account {
                    missing.push("«Лицевой счёт» (или «ЛС», «Номер ЛС»)");
                }
                if *full_name {
                    missing.push("«ФИО» (или «Плательщик», «Собственник», или «Фамилия», «Имя», «Отчество»)");
                }
                format!("В заголовке нет обязательных столбцов: {}.", missing.join(", "))
            }
            FileProblem::TooLarge { bytes, limit } => format!(
                "Файл слишком большой: {} МБ при пределе {} МБ. Разделите выгрузку на несколько файлов.",
                bytes / 1_000_000,
                limit / 1_000_000
            ),
            FileProblem::UnpackedTooLarge { part, limit } => format!(
                "Файл Excel распаковывается в слишком большой объём (часть «{part}» больше {} МБ). Сохраните выгрузку в CSV или разделите её на несколько файлов.",
                limit / 1_000_000
            ),
            FileProblem::TooManyColumns { line } => format!(
                "В строке {line} больше {MAX_COLUMNS} столбцов (или ячейка за последним столбцом Excel). Это не выгрузка лицевых счетов; проверьте файл."
            ),
            FileProblem::LineTooLong { line } => format!(
                "Строка {line} (вместе с продолжением в кавычках) длиннее 1 МБ. Так бывает, когда в ячейке не закрыта кавычка или это не таблица; проверьте файл около этой строки."
            ),
            FileProblem::Unreadable(detail) => format!("Файл не удалось прочитать: {detail}."),
        }
    }

    /// The first lines of the file, when they explain the problem.
    pub fn first_lines(&self) -> Option<&[String]> {
        match self {
            FileProblem::NoHeader { first_lines } => Some(first_lines),
            _ => None,
        }
    }
}

impl From<MissingColumns> for FileProblem {
    fn from(missing: MissingColumns) -> Self {
        FileProblem::MissingColumns { account: missing.account, full_name: missing.full_name }
    }
}

/// Of the header rows that name only some required columns, the one that
/// names the most: what the report says is missing.
pub(super) fn keep_most_complete(partial: &mut Option<MissingColumns>, missing: MissingColumns) {
    if partial.is_none_or(|p| p.found() < missing.found()) {
        *partial = Some(missing);
    }
}

fn unreadable(error: impl std::fmt::Display) -> FileProblem {
    FileProblem::Unreadable(error.to_string())
}

fn read_prefix(path: &Path) -> Result<(Vec<u8>, bool), FileProblem> {
    let file = File::open(path).map_err(unreadable)?;
    let mut prefix = Vec::with_capacity(SNIFF_BYTES + 1);
    file.take(SNIFF_BYTES as u64 + 1).read_to_end(&mut prefix).map_err(unreadable)?;
    let truncated = prefix.len() > SNIFF_BYTES;
    prefix.truncate(SNIFF_BYTES);
    Ok((prefix, truncated))
}

/// The text encoding and the length of its byte order mark: a BOM decides
/// (UTF-8, or UTF-16 as Excel's «Текст в Юникоде» writes it); otherwise
/// UTF-8 when the bytes are valid UTF-8, else Windows-1251.
fn encoding_of(prefix: &[u8]) -> (&'static Encoding, usize) {
    if let Some(found) = Encoding::for_bom(prefix) {
        return found;
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => (UTF_8, 0),
        // Cut in the middle of a character at the end of the sample: still UTF-8.
        Err(e) if e.error_len().is_none() => (UTF_8, 0),
        Err(_) => (WINDOWS_1251, 0),
    }
}

/// Finds the format and the header of the file at `path`.
pub fn open(path: &Path, limits: &ReadLimits) -> Result<Table, FileProblem> {
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > limits.max_file_bytes {
        return Err(FileProblem::TooLarge { bytes: size, limit: limits.max_file_bytes });
    }
    let (prefix, truncated) = read_prefix(path)?;
    if prefix.starts_with(b"PK\x03\x04") {
        check_xlsx_parts(path, limits)?;
        return open_xlsx(path);
    }
    if prefix.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(FileProblem::OldExcel);
    }
    let (encoding, bom) = encoding_of(&prefix);
    let body = prefix.get(bom..).unwrap_or_default();
    if encoding != WINDOWS_1251 {
        return open_text(body, encoding, truncated);
    }
    // Not UTF-8: Windows-1251 as 1C and Excel write it, or what DOS-era
    // billing programs wrote (CP866, KOI8-R). The one under which a header
    // is found wins; if none, Windows-1251 tells what is wrong.
    let mut first = None;
    for candidate in [WINDOWS_1251, IBM866, KOI8_R] {
        match open_text(body, candidate, truncated) {
            Ok(table) => return Ok(table),
            Err(problem) => {
                first.get_or_insert(problem);
            }
        }
    }
    Err(first.unwrap_or(FileProblem::Empty))
}

/// A CSV sample in a known encoding: its delimiter and header.
fn open_text(body: &[u8], encoding: &'static Encoding, truncated: bool) -> Result<Table, FileProblem> {
    let (sample, _) = encoding.decode_without_bom_handling(body);
    if sample.chars().all(char::is_whitespace) {
        return Err(FileProblem::Empty);
    }
    if sample.contains('\0') {
        return Err(FileProblem::NotTabular);
    }
    let cr_line_ends = sample.contains('\r') && !sample.contains('\n');
    let mut sample = if cr_line_ends { sample.replace('\r', "\n") } else { sample.replace('\r', "") };
    if truncated {
        // The last line of a cut sample is incomplete.
        let end = sample.rfind('\n').unwrap_or(0);
        sample.truncate(end);
    }
    open_csv(&sample, encoding, cr_line_ends)
}

/// The delimiter is the one under which a header is found and the rows
/// after it split into the same number of cells; how often a character
/// occurs never decides (Russian addresses and amounts are full of commas).
fn open_csv(sample: &str, encoding: &'static Encoding, cr_line_ends: bool) -> Result<Table, FileProblem> {
    let mut best: Option<(usize, usize, Table)> = None;
    let mut partial = None;
    for delimiter in DELIMITERS {
        let rows = sample_rows(sample, delimiter);
        let searched: Vec<RawRow> = rows.iter().take(HEADER_SEARCH_ROWS + 1).cloned().collect();
        match find_header(&searched) {
            HeaderSearch::Found(header) => {
                let following: Vec<&RawRow> =
                    rows.iter().filter(|r| r.line > header.line).take(CONSISTENCY_ROWS).collect();
                let consistent = following
                    .iter()
                    .filter(|r| r.cells.len() >= header.columns.width() && r.cells.len() <= header.cells.max(1) + 1)
                    .count();
                // Rows that fit, per thousand, then how much of the header is known.
                let score = (consistent + 1) * 1000 / (following.len() + 1);
                let known = header.columns.recognized.len();
                if best.as_ref().is_none_or(|(s, k, _)| (score, known) > (*s, *k)) {
                    let format = Format::Csv { encoding: encoding.name(), delimiter, cr_line_ends };
                    best = Some((score, known, Table { format, header }));
                }
            }
            HeaderSearch::Partial(missing) => keep_most_complete(&mut partial, missing),
            HeaderSearch::NotFound => {}
        }
    }
    match (best, partial) {
        (Some((_, _, table)), _) => Ok(table),
        (None, Some(missing)) => Err(missing.into()),
        (None, None) => Err(FileProblem::NoHeader { first_lines: first_lines(sample.lines()) }),
    }
}

/// Up to five non-blank lines, each cut to 150 characters.
fn first_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    lines
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(5)
        .map(|l| {
            let cut: String = l.chars().take(150).collect();
            if cut.len() < l.len() { format!("{cut}…") } else { cut }
        })
        .collect()
}

/// The non-blank rows of the sample split with `delimiter`.
fn sample_rows(sample: &str, delimiter: u8) -> Vec<RawRow> {
    let mut reader = csv_reader(sample.as_bytes(), delimiter);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        let line = record.position().map_or(0, csv::Position::line);
        let row = RawRow { line, cells: record.iter().map(str::to_owned).collect() };
        if !is_blank(&row) {
            rows.push(row);
        }
        if rows.len() > HEADER_SEARCH_ROWS + CONSISTENCY_ROWS + 2 {
            break;
        }
    }
    rows
}

fn csv_reader<R: Read>(input: R, delimiter: u8) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(input)
}

/// Calls `visit` with every row of the table, in order, until it breaks.
pub fn visit_rows(
    path: &Path,
    format: &Format,
    mut visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    visit_row_refs(path, format, |row| visit(row.clone()))
}

/// [`visit_rows`] lending each row: for CSV one row's buffers are reused,
/// so reading allocates nothing per row.
pub fn visit_row_refs(
    path: &Path,
    format: &Format,
    visit: impl FnMut(&RawRow) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    visit_row_refs_as(path, format, false, visit)
}

/// How CSV text reaches the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    /// Bytes as in the file from `start` (past a BOM), each cell decoded
    /// on its own: the delimiter, quotes and line ends are the same bytes
    /// in every encoding whose first 128 bytes are ASCII, and none of its
    /// other bytes decodes to them, so rows and cells split as in the
    /// decoded text. For UTF-8 and the single-byte encodings.
    ByCell { start: u64 },
    /// The whole stream decoded to UTF-8 first: UTF-16, or a file whose
    /// BOM names another encoding than the one found (tests compare the
    /// two ways on every encoding).
    Stream,
}

/// [`visit_row_refs`], or with the stream decoded first whatever the
/// encoding when `force_stream` (for tests).
fn visit_row_refs_as(
    path: &Path,
    format: &Format,
    force_stream: bool,
    mut visit: impl FnMut(&RawRow) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    match format {
        Format::Csv { encoding, delimiter, cr_line_ends } => {
            let encoding = Encoding::for_label(encoding.as_bytes()).unwrap_or(UTF_8);
            let mut file = File::open(path).map_err(unreadable)?;
            let shape = CsvShape { delimiter: *delimiter, cr_only: *cr_line_ends };
            let decoding = if force_stream { Decoding::Stream } else { decoding_of(&mut file, encoding)? };
            let start = match decoding {
                Decoding::ByCell { start } => start,
                Decoding::Stream => 0,
            };
            file.seek(SeekFrom::Start(start)).map_err(unreadable)?;
            let mut row = RawRow { line: 0, cells: Vec::new() };
            match decoding {
                Decoding::ByCell { .. } => {
                    let page = CodePage::of(encoding);
                    let widths = encoding.is_single_byte().then(|| decoded_widths(encoding));
                    visit_split(file, widths.as_ref(), shape.split(), SPLIT_LIMITS, &mut |record, line| {
                        decode_row(encoding, page.as_ref(), record, line, &mut row);
                        visit(&row)
                    })
                }
                Decoding::Stream => {
                    let decoded = DecodeReaderBytesBuilder::new()
                        .encoding(Some(encoding))
                        .bom_sniffing(true)
                        .build_with_buffer(
                            BufReader::with_capacity(READ_BUFFER_BYTES, file),
                            vec![0; READ_BUFFER_BYTES],
                        )
                        .map_err(unreadable)?;
                    visit_records(decoded, None, shape, SPLIT_LIMITS, &mut |record, line| {
                        decode_row(UTF_8, None, record, line, &mut row);
                        visit(&row)
                    })
                }
            }
        }
        Format::Xlsx { sheet } => {
            let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| unreadable(format!("XLSX: {e}")))?;
            visit_sheet(&mut workbook, sheet, &mut |row| visit(&row))
        }
    }
}

/// Whether cells can be decoded one by one (see [`Decoding::ByCell`]):
/// UTF-8 past its BOM, a single-byte encoding without a BOM.
fn decoding_of(file: &mut File, encoding: &'static Encoding) -> Result<Decoding, FileProblem> {
    if encoding != UTF_8 && !encoding.is_single_byte() {
        return Ok(Decoding::Stream);
    }
    let mut head = Vec::with_capacity(3);
    file.by_ref().take(3).read_to_end(&mut head).map_err(unreadable)?;
    Ok(match Encoding::for_bom(&head) {
        None => Decoding::ByCell { start: 0 },
        Some((bom, length)) if bom == encoding => {
            u64::try_from(length).map_or(Decoding::Stream, |start| Decoding::ByCell { start })
        }
        Some(_) => Decoding::Stream,
    })
}

/// For each byte of a single-byte encoding, how many bytes more than one
/// its character takes in UTF-8, so the line guard counts decoded bytes.
fn decoded_widths(encoding: &'static Encoding) -> [u8; 256] {
    let mut widths = [0u8; 256];
    for (byte, width) in (0..=u8::MAX).zip(widths.iter_mut()) {
        let single = [byte];
        let (text, _) = encoding.decode_without_bom_handling(&single);
        *width = u8::try_from(text.len().saturating_sub(1)).unwrap_or(u8::MAX);
    }
    widths
}

/// One cell's bytes as text, into `out` (cleared first): what decoding the
/// whole stream would have made of them.
fn decode_cell(encoding: &'static Encoding, page: Option<&CodePage>, bytes: &[u8], out: &mut String) {
    if let Some(page) = page {
        page.decode(bytes, out);
        return;
    }
    out.clear();
    if encoding == UTF_8 || bytes.is_ascii() {
        if let Ok(text) = std::str::from_utf8(bytes) {
            out.push_str(text);
            return;
        }
    }
    let mut decoder = encoding.new_decoder_without_bom_handling();
    if let Some(needed) = decoder.max_utf8_buffer_length(bytes.len()) {
        out.reserve(needed);
        let (result, read, _) = decoder.decode_to_string(bytes, out, true);
        if result == encoding_rs::CoderResult::InputEmpty && read == bytes.len() {
            return;
        }
    }
    out.clear();
    out.push_str(&encoding.decode_without_bom_handling(bytes).0);
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CsvShape {
    pub(super) delimiter: u8,
    pub(super) cr_only: bool,
}

impl CsvShape {
    fn split(self) -> Shape {
        Shape { delimiter: self.delimiter, cr_only: self.cr_only }
    }
}

/// How the CSV readers cut the file and how long a line may be.
const SPLIT_LIMITS: Limits = Limits { chunk: READ_BUFFER_BYTES, max_line: MAX_LINE_BYTES };

/// The records of CSV `input`, with their lines, as the csv crate reads
/// them behind the CR filter and the line guard: the reader of decoded
/// streams, and the reference of [`visit_split`].
pub(super) fn visit_records<R: Read>(
    input: R,
    widths: Option<[u8; 256]>,
    shape: CsvShape,
    limits: Limits,
    visit: &mut impl FnMut(Record<'_>, u64) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    let mut guarded = LineGuard::new(LineEnds { inner: input, cr_only: shape.cr_only }, shape.delimiter);
    guarded.widths = widths;
    guarded.max_line = limits.max_line;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(shape.delimiter)
        .buffer_capacity(limits.chunk)
        .from_reader(guarded);
    let mut record = csv::ByteRecord::new();
    let mut ends = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                if record.len() > MAX_COLUMNS {
                    return Err(FileProblem::TooManyColumns { line });
                }
                ends.clear();
                ends.extend((0..record.len()).map(|i| record.range(i).map_or(0, |r| r.end)));
                if visit(Record::new(record.as_slice(), &ends), line).is_break() {
                    return Ok(());
                }
            }
            Ok(false) => return Ok(()),
            Err(e) => {
                let line = e.position().map_or(reader.position().line(), csv::Position::line);
                if let csv::ErrorKind::Io(io) = e.kind() {
                    if io.get_ref().is_some_and(|inner| inner.is::<LineTooLongError>()) {
                        return Err(FileProblem::LineTooLong { line });
                    }
                }
                return Err(FileProblem::Unreadable(format!("строка {line}: {e}")));
            }
        }
    }
}

/// The record's cells, in `encoding` (through its byte table `page` for a
/// single-byte one), decoded into `row`'s buffers.
fn decode_row(encoding: &'static Encoding, page: Option<&CodePage>, record: Record<'_>, line: u64, row: &mut RawRow) {
    row.line = line;
    row.cells.truncate(record.len());
    for (index, field) in record.iter().enumerate() {
        match row.cells.get_mut(index) {
            Some(cell) => decode_cell(encoding, page, field, cell),
            None => {
                let mut cell = String::new();
                decode_cell(encoding, page, field, &mut cell);
                row.cells.push(cell);
            }
        }
    }
}

/// Every row after the header, as [`classify_ref`] sorts it, with its
/// line. What an import reads: the plain rows of a code-page CSV (see
/// [`super::plain`]) are read from their bytes, without decoding every cell
/// first.
pub fn visit_outcomes(
    path: &Path,
    table: &Table,
    mut visit: impl FnMut(u64, RowOutcomeRef<'_>) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    let header = &table.header;
    let plain = match &table.format {
        Format::Csv { encoding, delimiter, cr_line_ends } => {
            let encoding = Encoding::for_label(encoding.as_bytes()).unwrap_or(UTF_8);
            CodePage::of(encoding)
                .map(|page| (page, encoding, CsvShape { delimiter: *delimiter, cr_only: *cr_line_ends }))
        }
        Format::Xlsx { .. } => None,
    };
    if let Some((page, encoding, shape)) = plain {
        let mut file = File::open(path).map_err(unreadable)?;
        if let Decoding::ByCell { start } = decoding_of(&mut file, encoding)? {
            file.seek(SeekFrom::Start(start)).map_err(unreadable)?;
            let mut row = RawRow { line: 0, cells: Vec::new() };
            let mut text = Vec::new();
            let widths = decoded_widths(encoding);
            return visit_split(file, Some(&widths), shape.split(), SPLIT_LIMITS, &mut |record, line| {
                if line <= header.line {
                    return ControlFlow::Continue(());
                }
                if let Some(outcome) = classify_plain(&page, record, &header.columns, &mut text) {
                    return visit(line, outcome);
                }
                decode_row(encoding, Some(&page), record, line, &mut row);
                visit(line, classify_ref(&row, &header.columns))
            });
        }
    }
    visit_row_refs(path, &table.format, |row| {
        if row.line <= header.line {
            return ControlFlow::Continue(());
        }
        visit(row.line, classify_ref(row, &header.columns))
    })
}

/// Rows of one sheet, as the cell reader streams them.
fn visit_sheet<R: Read + std::io::Seek>(
    workbook: &mut Xlsx<R>,
    sheet: &str,
    visit: &mut impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    let mut cells = workbook.worksheet_cells_reader(sheet).map_err(|e| unreadable(format!("XLSX: {e}")))?;
    let mut current: Option<RawRow> = None;
    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(format!("XLSX: {e}")))? {
        let (row, column) = cell.get_position();
        let line = u64::from(row) + 1;
        let column = column as usize;
        if column >= MAX_COLUMNS {
            return Err(FileProblem::TooManyColumns { line });
        }
        if current.as_ref().is_some_and(|r| r.line != line) {
            if let Some(done) = current.take() {
                if visit(done).is_break() {
                    return Ok(());
                }
            }
        }
        let row = current.get_or_insert_with(|| RawRow { line, cells: Vec::new() });
        if row.cells.len() <= column {
            row.cells.resize(column + 1, String::new());
        }
        if let Some(slot) = row.cells.get_mut(column) {
            *slot = cell_text(cell.get_value());
        }
    }
    if let Some(done) = current {
        let _ = visit(done);
    }
    Ok(())
}

/// The first sheet whose first rows hold a header: workbooks often open
/// with a cover sheet.
fn open_xlsx(path: &Path) -> Result<Table, FileProblem> {
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| unreadable(format!("XLSX: {e}")))?;
    let mut partial = None;
    let mut first_sheet_lines: Option<Vec<String>> = None;
    for sheet in workbook.sheet_names() {
        let mut rows = Vec::new();
        let read = visit_sheet(&mut workbook, &sheet, &mut |row| {
            if !is_blank(&row) {
                rows.push(row);
            }
            if rows.len() > HEADER_SEARCH_ROWS { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        match read {
            Err(problem @ FileProblem::TooManyColumns { .. }) => return Err(problem),
            // A chart sheet or a damaged one: the header may be on another.
            Err(_) => continue,
            Ok(()) => {}
        }
        if first_sheet_lines.is_none() {
            let lines: Vec<String> = rows.iter().map(|r| r.cells.join(" | ")).collect();
            first_sheet_lines = Some(first_lines(lines.iter().map(String::as_str)));
        }
        match find_header(&rows) {
            HeaderSearch::Found(header) => return Ok(Table { format: Format::Xlsx { sheet }, header }),
            HeaderSearch::Partial(missing) => keep_most_complete(&mut partial, missing),
            HeaderSearch::NotFound => {}
        }
    }
    match (partial, first_sheet_lines) {
        (Some(missing), _) => Err(missing.into()),
        (None, Some(first_lines)) => Err(FileProblem::NoHeader { first_lines }),
        (None, None) => Err(FileProblem::Empty),
    }
}

/// Unpacks every part of the XLSX once, counting, before calamine opens it:
/// the sizes a zip declares can lie. Parts held in memory (shared strings,
/// styles) must fit a quarter of the function's memory, all parts together
/// the streaming limit, and no text between two tags may exceed a cell.
fn check_xlsx_parts(path: &Path, limits: &ReadLimits) -> Result<(), FileProblem> {
    let file = File::open(path).map_err(unreadable)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| unreadable(format!("XLSX: {e}")))?;
    let mut total: u64 = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    for index in 0..archive.len() {
        let mut part = archive.by_index(index).map_err(|e| unreadable(format!("XLSX: {e}")))?;
        let name = part.name().map(|n| n.into_owned()).unwrap_or_default();
        let streamed = name.starts_with("xl/worksheets/");
        let limit = if streamed { limits.max_xlsx_unpacked_bytes } else { limits.max_xlsx_in_memory_bytes };
        let too_large = || FileProblem::UnpackedTooLarge { part: name.clone(), limit };
        if part.size() > limit {
            return Err(too_large());
        }
        let mut size: u64 = 0;
        let mut text_run: usize = 0;
        loop {
            let read = part.read(&mut buffer).map_err(|e| unreadable(format!("XLSX: {e}")))?;
            if read == 0 {
                break;
            }
            size += read as u64;
            total += read as u64;
            if size > limit {
                return Err(too_large());
            }
            if total > limits.max_xlsx_unpacked_bytes {
                return Err(FileProblem::UnpackedTooLarge {
                    part: name.clone(),
                    limit: limits.max_xlsx_unpacked_bytes,
                });
            }
            for byte in buffer.iter().take(read) {
                if matches!(byte, b'<' | b'>') {
                    text_run = 0;
                } else {
                    text_run += 1;
                    if text_run > MAX_XML_TEXT_BYTES {
                        return Err(FileProblem::UnpackedTooLarge {
                            part: name.clone(),
                            limit: MAX_XML_TEXT_BYTES as u64,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Line ends as LF: CR bytes are dropped from CRLF text (the csv crate
/// numbers the lines of CRLF input one too low after the first record), and
/// turned into LF in text whose lines end in a bare CR. Runs on UTF-8 or on
/// the bytes of an ASCII-compatible encoding (CR and LF are the same bytes).
struct LineEnds<R> {
    inner: R,
    cr_only: bool,
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = self.inner.read(buffer)?;
            if read == 0 {
                return Ok(0);
            }
            let filled = buffer.get_mut(..read).unwrap_or_default();
            if self.cr_only {
                filled.iter_mut().filter(|b| **b == b'\r').for_each(|b| *b = b'\n');
                return Ok(read);
            }
            // Moves the text between CRs down over them, a run at a time.
            let mut kept = 0;
            let mut start = 0;
            loop {
                let next = filled.get(start..).and_then(|rest| memchr::memchr(b'\r', rest)).map(|at| start + at);
                let end = next.unwrap_or(read);
                if kept != start {
                    filled.copy_within(start..end, kept);
                }
                kept += end - start;
                match next {
                    Some(cr) => start = cr + 1,
                    None => break,
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

#[derive(Debug)]
struct LineTooLongError;

impl std::fmt::Display for LineTooLongError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a line longer than the limit")
    }
}

impl std::error::Error for LineTooLongError {}

/// Fails the read once a record grows past [`MAX_LINE_BYTES`], so an
/// endless line, or a quote never closed (which would swallow the rest of
/// the file into one cell), cannot fill memory or hide the rows after it.
/// It follows quoting as the csv crate does: a field quoted from its first
/// byte, `""` inside it; a quote elsewhere is text.
struct LineGuard<R> {
    inner: R,
    delimiter: u8,
    since_record: usize,
    quoted: bool,
    field_start: bool,
    /// A quote seen inside a quoted field: closing, or the first of `""`.
    quote_pending: bool,
    /// Reading bytes of a single-byte encoding: per byte, how many more
    /// bytes its character takes in UTF-8, so the limit is on the decoded
    /// line as before.
    widths: Option<[u8; 256]>,
    /// The longest line allowed, [`MAX_LINE_BYTES`] but in tests.
    max_line: usize,
}

impl<R> LineGuard<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            delimiter,
            since_record: 0,
            quoted: false,
            field_start: true,
            quote_pending: false,
            widths: None,
            max_line: MAX_LINE_BYTES,
        }
    }

    fn step(&mut self, byte: u8) {
        self.since_record += 1;
        if self.quoted {
            if self.quote_pending {
                self.quote_pending = false;
                if byte == b'"' {
                    return;
                }
                self.quoted = false;
            } else {
                if byte == b'"' {
                    self.quote_pending = true;
                }
                return;
            }
        }
        if byte == b'\n' {
            self.since_record = 0;
            self.field_start = true;
        } else if byte == self.delimiter {
            self.field_start = true;
        } else {
            self.quoted = self.field_start && byte == b'"';
            self.field_start = false;
        }
    }
}

impl<R> LineGuard<R> {
    /// [`LineGuard::step`] over `bytes`, skipping the runs that cannot
    /// change the state: inside a quoted field everything but a quote, in
    /// the middle of an unquoted one everything but a line end or the
    /// delimiter. Returns where the last record that starts in `bytes`
    /// starts (0 when none ends in it).
    fn scan(&mut self, bytes: &[u8]) -> usize {
        let mut record_start = 0;
        let mut at = 0;
        while let Some(rest) = bytes.get(at..).filter(|rest| !rest.is_empty()) {
            let skip = if self.quoted && !self.quote_pending {
                memchr::memchr(b'"', rest)
            } else if !self.quoted && !self.field_start {
                memchr::memchr2(b'\n', self.delimiter, rest)
            } else {
                Some(0)
            };
            let Some(skip) = skip else {
                self.since_record += rest.len();
                return record_start;
            };
            self.since_record += skip;
            at += skip;
            if let Some(byte) = bytes.get(at) {
                self.step(*byte);
                if self.since_record == 0 {
                    record_start = at + 1;
                }
            }
            at += 1;
        }
        record_start
    }
}

impl<R: Read> Read for LineGuard<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let filled = buffer.get(..read).unwrap_or_default();
        let record_start = self.scan(filled);
        if let Some(widths) = &self.widths {
            // The check is on the record still open at the end of the
            // chunk, as before: only its part in this chunk is weighed.
            let tail = filled.get(record_start..).unwrap_or_default();
            self.since_record +=
                tail.iter().map(|b| usize::from(widths.get(usize::from(*b)).copied().unwrap_or(0))).sum::<usize>();
        }
        if self.since_record > self.max_line {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, LineTooLongError));
        }
        Ok(read)
    }
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        // Account numbers typed as numbers come back as floats. Past 15
        // digits Excel has dropped some: the exponent form makes the
        // account column refuse it rather than load other digits.
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        DataRef::Float(f) if f.fract() == 0.0 => format!("{f:E}"),
        // Sums of amounts carry binary noise (0.20000000000004547): kopecks.
        DataRef::Float(f) => format!("{f:.2}"),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::DateTime(d) => d.as_f64().to_string(),
        DataRef::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_of(text: &str) -> Result<Table, FileProblem> {
        open_csv(text, UTF_8, false)
    }

    fn delimiter_of(text: &str) -> u8 {
        match table_of(text).unwrap().format {
            Format::Csv { delimiter, .. } => delimiter,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_delimiter_is_the_one_under_which_a_header_is_found() {
        assert_eq!(delimiter_of("ЛС;ФИО;Адрес\n1;Иванов И.И.;\"г. Москва, ул. Лесная\"\n"), b';');
        assert_eq!(delimiter_of("ЛС,ФИО\n1,Иванов И.И.\n"), b',');
        assert_eq!(delimiter_of("ЛС\tФИО\tАдрес\n1\tИванов И.И.\tМосква, Лесная\n"), b'\t');
        assert_eq!(delimiter_of("ЛС;ФИО\n1;\"Иванов, И.И.\"\n"), b';');
        assert_eq!(delimiter_of("ЛС|ФИО|Адрес\n1|Иванов И.И.|Тверь, Ленина, 1; кв. 3\n"), b'|');
        // More commas than semicolons, unquoted: the old counting chose `,`.
        let russian = "Л/С;ФИО плательщика;Адрес;Сальдо\n\
                       1;Иванов Иван Иванович;г. Тверь, ул. Ленина, д. 1, кв. 3;1 234,56\n\
                       2;Петров Пётр Петрович;г. Тверь, ул. Ленина, д. 1, кв. 4;-150,00\n";
        assert_eq!(delimiter_of(russian), b';');
        assert_eq!(delimiter_of(&russian.replace(';', "\t")), b'\t');
    }

    #[test]
    fn no_header_names_the_first_lines() {
        let problem = table_of("100;Иванов\n200;Петров\n").unwrap_err();
        assert_eq!(problem.first_lines(), Some(&["100;Иванов".to_owned(), "200;Петров".to_owned()][..]));
        assert!(problem.message().contains("«100;Иванов»"), "{}", problem.message());
    }

    fn rows_of(bytes: &[u8]) -> (Format, Vec<RawRow>) {
        let path = std::env::temp_dir().join(format!("rows-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        let table = open(&path, &ReadLimits::default()).unwrap();
        let mut rows = Vec::new();
        visit_rows(&path, &table.format, |row| {
            rows.push(row);
            ControlFlow::Continue(())
        })
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        (table.format, rows)
    }

    #[test]
    fn reads_windows_1251_with_crlf_and_quoted_delimiters() {
        let text = "ЛС;ФИО;Адрес\r\n1;Иванов И.И.;\"г. Москва; ул. Лесная\"\r\n2;Петров П.П.;\r\n";
        let (bytes, _, _) = WINDOWS_1251.encode(text);
        let (format, rows) = rows_of(&bytes);
        assert_eq!(format, Format::Csv { encoding: "windows-1251", delimiter: b';', cr_line_ends: false });
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 3], "{rows:?}");
        assert_eq!(rows[1].cells, ["1", "Иванов И.И.", "г. Москва; ул. Лесная"]);
    }

    #[test]
    fn utf8_and_windows_1251_are_told_apart() {
        assert_eq!(encoding_of("Лицевой счёт".as_bytes()), (UTF_8, 0));
        let (cp1251, _, _) = WINDOWS_1251.encode("Лицевой счёт");
        assert_eq!(encoding_of(&cp1251), (WINDOWS_1251, 0));
        let cut = &"Лицевой".as_bytes()[..3];
        assert_eq!(encoding_of(cut), (UTF_8, 0));
        assert_eq!(encoding_of(&[0xFF, 0xFE, 0x1B, 0x04]), (encoding_rs::UTF_16LE, 2));
    }

    fn temp_file(bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("hostile-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A workbook whose shared strings are `strings` chunks of `chunk`.
    fn xlsx_with_shared_strings(chunk: &str, strings: usize, one_string: bool) -> Vec<u8> {
        use std::io::Write;
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut archive = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        archive.start_file("xl/sharedStrings.xml", options).unwrap();
        archive.write_all(b"<sst>").unwrap();
        if one_string {
            archive.write_all(b"<si><t>").unwrap();
        }
        for _ in 0..strings {
            if one_string {
                archive.write_all(chunk.as_bytes()).unwrap();
            } else {
                write!(archive, "<si><t>{chunk}</t></si>").unwrap();
            }
        }
        if one_string {
            archive.write_all(b"</t></si>").unwrap();
        }
        archive.write_all(b"</sst>").unwrap();
        archive.finish().unwrap();
        buffer.into_inner()
    }

    #[test]
    fn shared_strings_past_a_quarter_of_memory_are_refused_before_opening() {
        // 40 MB of short strings, for a function of 128 MiB (32 MiB allowed).
        let path = temp_file(&xlsx_with_shared_strings("Иванов Иван Иванович", 1_000_000, false));
        let problem = open(&path, &ReadLimits::for_memory(128)).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(problem.code(), "xlsx_too_large_unpacked");
        assert!(problem.message().contains("sharedStrings.xml"), "{}", problem.message());
    }

    #[test]
    fn one_shared_string_longer_than_a_cell_is_refused() {
        let path = temp_file(&xlsx_with_shared_strings(&"а".repeat(1024), 1024, true));
        let problem = open(&path, &ReadLimits::default()).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(problem.code(), "xlsx_too_large_unpacked", "{problem:?}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_unread() {
        let path = temp_file(b"\xd0\x9b\xd0\xa1;\xd0\xa4\xd0\x98\xd0\x9e\n1;\xd0\x98 \xd0\x98\n");
        let limits = ReadLimits { max_file_bytes: 10, ..ReadLimits::default() };
        let problem = open(&path, &limits).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(problem, FileProblem::TooLarge { limit: 10, .. }), "{problem:?}");
        assert!(problem.message().contains("слишком большой"));
    }

    #[test]
    fn a_quote_never_closed_does_not_swallow_the_file() {
        let mut text = String::from("ЛС;Адрес;ФИО\n1;\"ЖК Лесной, д. 1;Иванов И.И.\n");
        for i in 0..40_000 {
            text.push_str(&format!("{i};ул. Ленина, д. 1;Петров Пётр Петрович\n"));
        }
        let path = temp_file(text.as_bytes());
        let table = open(&path, &ReadLimits::default()).unwrap();
        let result = visit_rows(&path, &table.format, |_| ControlFlow::Continue(()));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(result, Err(FileProblem::LineTooLong { .. })), "{result:?}");
        // A quote inside an unquoted field is text, as the csv crate reads it.
        let mut stray = String::from("ЛС;ФИО\n1;ООО \"Ромашка\n");
        for i in 0..40_000 {
            stray.push_str(&format!("{i};Петров Пётр Петрович\n"));
        }
        let path = temp_file(stray.as_bytes());
        let table = open(&path, &ReadLimits::default()).unwrap();
        let mut rows = 0;
        let result = visit_rows(&path, &table.format, |_| {
            rows += 1;
            ControlFlow::Continue(())
        });
        std::fs::remove_file(&path).unwrap();
        assert_eq!((result, rows), (Ok(()), 40_002));
    }

    #[test]
    fn a_csv_row_past_excels_last_column_is_refused() {
        let mut text = String::from("ЛС;ФИО\n1;Иванов И.И.\n2;Петров П.П.");
        text.push_str(&";".repeat(MAX_COLUMNS));
        text.push('\n');
        let path = temp_file(text.as_bytes());
        let table = open(&path, &ReadLimits::default()).unwrap();
        let result = visit_rows(&path, &table.format, |_| ControlFlow::Continue(()));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(result, Err(FileProblem::TooManyColumns { line: 3 }));
    }

    #[test]
    fn dos_encodings_are_told_by_the_header_they_give() {
        let text = "Лиц. счет|ФИО|Адрес|Долг\r\n1|Иванов Иван Иванович|г. Тверь|1,50\r\n";
        for encoding in [IBM866, KOI8_R, WINDOWS_1251] {
            let (bytes, _, _) = encoding.encode(text);
            let (format, rows) = rows_of(&bytes);
            assert_eq!(format, Format::Csv { encoding: encoding.name(), delimiter: b'|', cr_line_ends: false });
            assert_eq!(rows[1].cells[1], "Иванов Иван Иванович", "{}", encoding.name());
        }
    }

    #[test]
    fn the_line_guard_scan_follows_quoting_byte_by_byte() {
        use proptest::prelude::*;
        let alphabet = proptest::sample::select(vec![b'a', b';', b'"', b'\n', 0xD0]);
        let input = proptest::collection::vec(alphabet, 0..200);
        proptest!(|(bytes in input, cut in 0usize..200)| {
            let mut stepped = LineGuard::new((), b';');
            bytes.iter().for_each(|b| stepped.step(*b));
            let mut scanned = LineGuard::new((), b';');
            let (first, second) = bytes.split_at(cut.min(bytes.len()));
            scanned.scan(first);
            scanned.scan(second);
            let state = |g: &LineGuard<()>| (g.since_record, g.quoted, g.field_start, g.quote_pending);
            prop_assert_eq!(state(&scanned), state(&stepped));
        });
    }

    /// What a CSV reader made of `bytes`: each record's line and cells, up
    /// to `stop` records, or the problem it ended with.
    type Split = Result<Vec<(u64, Vec<Vec<u8>>)>, FileProblem>;

    fn split_both_ways(
        bytes: &[u8],
        widths: Option<&[u8; 256]>,
        shape: CsvShape,
        limits: Limits,
        stop: usize,
    ) -> [Split; 2] {
        let collect = |records: &mut Vec<(u64, Vec<Vec<u8>>)>, record: Record<'_>, line: u64| {
            records.push((line, record.iter().map(<[u8]>::to_vec).collect()));
            if records.len() >= stop { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        };
        let mut by_crate = Vec::new();
        let by_crate = visit_records(bytes, widths.copied(), shape, limits, &mut |record, line| {
            collect(&mut by_crate, record, line)
        })
        .map(|()| by_crate);
        let mut split = Vec::new();
        let split = visit_split(std::io::Cursor::new(bytes), widths, shape.split(), limits, &mut |record, line| {
            collect(&mut split, record, line)
        })
        .map(|()| split);
        [by_crate, split]
    }

    #[test]
    fn the_splitter_reads_as_the_csv_crate_behind_the_filters() {
        use proptest::prelude::*;
        let alphabet = proptest::sample::select(vec![
            b'a', b'1', b' ', b';', b',', b'\t', b'|', b'"', b'"', b'\r', b'\n', b'\n', 0xD0, 0xEF, 0xBB, 0xBF, 0x98,
            0xFF,
        ]);
        let bytes = proptest::collection::vec(alphabet, 0..300);
        let encodings = proptest::sample::select(vec![UTF_8, WINDOWS_1251, KOI8_R, IBM866]);
        let delimiters = proptest::sample::select(DELIMITERS.to_vec());
        proptest!(ProptestConfig::with_cases(4000), |(bytes in bytes, encoding in encodings, delimiter in delimiters,
                    cr_only: bool, bom: bool, chunk in 1usize..40, max_line in 1usize..80, stop in 1usize..50)| {
            let mut bytes = bytes;
            if bom {
                bytes.splice(0..0, *b"\xEF\xBB\xBF");
            }
            let widths = encoding.is_single_byte().then(|| decoded_widths(encoding));
            let shape = CsvShape { delimiter, cr_only };
            let [by_crate, split] = split_both_ways(&bytes, widths.as_ref(), shape, Limits { chunk, max_line }, stop);
            prop_assert_eq!(by_crate, split);
        });
    }

    #[test]
    fn the_splitter_reads_real_rows_as_the_csv_crate() {
        use proptest::prelude::*;
        let cell = "[a-zА-я0-9 .,]{0,12}|\"[a-zА-я0-9 .,;|\t\r\n\"]{0,12}\"|\"\"|";
        let row = proptest::collection::vec(cell, 1..6);
        let rows = proptest::collection::vec((row, 0..4usize), 0..20);
        let encodings = proptest::sample::select(vec![UTF_8, WINDOWS_1251, KOI8_R, IBM866]);
        proptest!(ProptestConfig::with_cases(1000), |(rows in rows, encoding in encodings, cr_only: bool,
                    chunk in prop_oneof![1usize..64, Just(READ_BUFFER_BYTES)], max_line in prop_oneof![8usize..400, Just(MAX_LINE_BYTES)])| {
            let mut text = String::new();
            for (cells, end) in &rows {
                text.push_str(&cells.join(";"));
                text.push_str(["\n", "\r\n", "\r", "\n\n"][*end]);
            }
            let bytes = encoding.encode(&text).0.into_owned();
            let widths = encoding.is_single_byte().then(|| decoded_widths(encoding));
            let shape = CsvShape { delimiter: b';', cr_only };
            let [by_crate, split] = split_both_ways(&bytes, widths.as_ref(), shape, Limits { chunk, max_line }, usize::MAX);
            prop_assert_eq!(by_crate, split);
        });
    }

    #[test]
    fn the_splitter_guards_long_lines_and_columns_as_the_csv_crate() {
        let long = format!(
            "ЛС;ФИО\r\n1;{}\r\n2;\"{}",
            "ж".repeat(MAX_LINE_BYTES / 2 + 10),
            "\"\"x\n".repeat(MAX_LINE_BYTES / 3)
        );
        let columns = format!("ЛС;ФИО\n1;Иванов\n2;{}\n3;Петров\n", ";".repeat(MAX_COLUMNS));
        for text in [long.as_str(), columns.as_str()] {
            for encoding in [UTF_8, WINDOWS_1251] {
                let bytes = encoding.encode(text).0.into_owned();
                let widths = encoding.is_single_byte().then(|| decoded_widths(encoding));
                let shape = CsvShape { delimiter: b';', cr_only: false };
                let [by_crate, split] = split_both_ways(&bytes, widths.as_ref(), shape, SPLIT_LIMITS, usize::MAX);
                assert!(by_crate.is_err(), "{}", encoding.name());
                assert_eq!(by_crate, split, "{}", encoding.name());
            }
        }
    }

    /// The rows of `bytes` read as `format` says, cells decoded one by one
    /// and with the stream decoded first.
    fn rows_both_ways(bytes: &[u8], format: &Format) -> [Result<Vec<RawRow>, FileProblem>; 2] {
        let path = temp_file(bytes);
        let read = |force_stream| {
            let mut rows = Vec::new();
            visit_row_refs_as(&path, format, force_stream, |row| {
                rows.push(row.clone());
                ControlFlow::Continue(())
            })
            .map(|()| rows)
        };
        let both = [read(false), read(true)];
        std::fs::remove_file(&path).unwrap();
        both
    }

    #[test]
    fn cells_decoded_one_by_one_read_as_the_decoded_stream() {
        use proptest::prelude::*;
        let alphabet: Vec<char> = "aZ09 .,;|\t\"\r\nЁёЙйЯяАа\u{a0}€№—«»’₽ї😀".chars().collect();
        let text = proptest::collection::vec(proptest::sample::select(alphabet), 0..200)
            .prop_map(|chars| chars.into_iter().collect::<String>());
        let encodings = proptest::sample::select(vec![WINDOWS_1251, KOI8_R, IBM866, UTF_8]);
        let delimiters = proptest::sample::select(DELIMITERS.to_vec());
        let stray = proptest::collection::vec(any::<u8>(), 0..6);
        proptest!(|(text in text, encoding in encodings, delimiter in delimiters, cr_only: bool, bom: bool,
                    stray in stray, at in any::<proptest::sample::Index>())| {
            let mut bytes = encoding.encode(&text).0.into_owned();
            // Bytes the encoder would not write: invalid UTF-8, undefined
            // or control bytes of a code page.
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, stray);
            if bom {
                bytes.splice(0..0, *b"\xEF\xBB\xBF");
            }
            let format = Format::Csv { encoding: encoding.name(), delimiter, cr_line_ends: cr_only };
            let [by_cell, stream] = rows_both_ways(&bytes, &format);
            prop_assert_eq!(by_cell, stream);
        });
    }

    /// Every data row's outcome, as the import reads them and as
    /// `classify_ref` sorts the decoded rows.
    fn outcomes_both_ways(bytes: &[u8], table: &Table) -> [Result<Vec<(u64, String)>, FileProblem>; 2] {
        let path = temp_file(bytes);
        let epoch = time::OffsetDateTime::UNIX_EPOCH;
        let mut plain = Vec::new();
        let plain = visit_outcomes(&path, table, |line, outcome| {
            plain.push((line, format!("{:?}", outcome.into_owned(epoch))));
            ControlFlow::Continue(())
        })
        .map(|()| plain);
        let mut decoded = Vec::new();
        let decoded = visit_row_refs_as(&path, &table.format, true, |row| {
            if row.line > table.header.line {
                decoded.push((row.line, format!("{:?}", classify_ref(row, &table.header.columns).into_owned(epoch))));
            }
            ControlFlow::Continue(())
        })
        .map(|()| decoded);
        std::fs::remove_file(&path).unwrap();
        [plain, decoded]
    }

    #[test]
    fn plain_rows_read_as_decoded_rows() {
        use proptest::prelude::*;
        let first = "[0-9]{1,22}|0{0,3}[1-9][0-9]{0,8}| 12|1\\.0E\\+3|1|Итого|а1|";
        let name = "[А-Яа-яЁё]{1,8}( [А-Яа-яЁё]{1,8}\\.?){0,3}|[А-я]{2,6} [А-я]\\.[А-я]\\.|Ivanov Ivan|\
                    [А-Яа-яЁёA-Za-z .\\-’\u{a0}1]{0,16}|";
        let address = "[а-яА-ЯЁё0-9.,№]{0,10}( [а-яА-ЯЁё0-9.,№«»\"]{1,10}){0,4}|[ а-я\t€—]{0,8}|";
        let balance = "-?[0-9]{0,4}( [0-9]{3})?(,[0-9]{1,3})?|много|1 234,56 руб\\.|\\(5\\)|";
        let row = (first, name, address, "[0-9,]{0,4}", balance, balance);
        let rows = proptest::collection::vec(row, 0..12);
        let encodings = proptest::sample::select(vec![WINDOWS_1251, KOI8_R, IBM866, UTF_8]);
        proptest!(|(rows in rows, encoding in encodings, credit: bool, short: bool)| {
            let mut writer = csv::WriterBuilder::new().delimiter(b';').flexible(true).from_writer(Vec::new());
            writer.write_record(["ЛС", "ФИО", "Адрес", "Площадь", "Сальдо", "Кредит"]).unwrap();
            for (i, (first, name, address, area, debit, credit)) in rows.iter().enumerate() {
                let cells = [first, name, address, area, debit, credit];
                // Some rows end early: missing cells read as empty.
                let width = if short && i % 3 == 0 { i % 6 } else { 6 };
                writer.write_record(&cells[..width]).unwrap();
            }
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let bytes = encoding.encode(&text).0.into_owned();
            let mut columns = super::super::columns::ColumnMap::from_header(
                &["ЛС".into(), "ФИО".into(), "Адрес".into(), "Площадь".into(), "Сальдо".into()],
            ).unwrap();
            columns.balance_credit = credit.then_some(5);
            let header = Header { line: 1, columns, cells: 6 };
            let format = Format::Csv { encoding: encoding.name(), delimiter: b';', cr_line_ends: false };
            let table = Table { format, header };
            let [plain, decoded] = outcomes_both_ways(&bytes, &table);
            prop_assert_eq!(plain, decoded);
        });
    }

    #[test]
    fn a_code_page_decodes_as_encoding_rs_does() {
        for encoding in [WINDOWS_1251, KOI8_R, IBM866] {
            let page = CodePage::of(encoding).unwrap();
            let bytes: Vec<u8> = (0..=u8::MAX).collect();
            let mut decoded = String::new();
            page.decode(&bytes, &mut decoded);
            assert_eq!(decoded, encoding.decode_without_bom_handling(&bytes).0, "{}", encoding.name());
        }
    }

    #[test]
    fn the_line_limit_counts_decoded_bytes_in_a_code_page() {
        // Cyrillic takes one byte in Windows-1251 and two in UTF-8: the limit
        // is on the decoded line, as when the whole stream was decoded.
        for (letters, too_long) in [(MAX_LINE_BYTES / 2 + 70_000, true), (MAX_LINE_BYTES / 2 - 70_000, false)] {
            let text = format!("ЛС;ФИО\r\n1;Иванов И.И.\r\n2;{}\r\n3;Петров П.П.\r\n", "ж".repeat(letters));
            let bytes = WINDOWS_1251.encode(&text).0.into_owned();
            let format = Format::Csv { encoding: WINDOWS_1251.name(), delimiter: b';', cr_line_ends: false };
            let [by_cell, stream] = rows_both_ways(&bytes, &format);
            assert_eq!(by_cell.is_err(), too_long, "{letters}");
            assert_eq!(by_cell, stream, "{letters}");
        }
    }

    #[test]
    fn an_endless_line_is_a_file_problem() {
        let mut text = String::from("ЛС;ФИО\n1;Иванов И.И.\n2;\"");
        text.push_str(&"а".repeat(MAX_LINE_BYTES));
        let path = std::env::temp_dir().join(format!("long-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        let table = open(&path, &ReadLimits::default()).unwrap();
        let result = visit_rows(&path, &table.format, |_| ControlFlow::Continue(()));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(result, Err(FileProblem::LineTooLong { line: 3 }));
    }
}
