//! Reading a billing export from disk, whatever the billing program made of
//! it: CSV in UTF-8 (with or without BOM) or Windows-1251 with `;`, `,` or tab,
//! or XLSX (first sheet). The format is read from the content, never from
//! the file name. Rows are visited one at a time, so memory does not grow
//! with the file.

use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx, open_workbook};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1251};
use encoding_rs_io::DecodeReaderBytesBuilder;

use super::rows::RawRow;

/// How much of the file is looked at to tell its format.
const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv { encoding: &'static str, delimiter: u8 },
    Xlsx,
}

/// A problem with the file as a whole: nothing is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Empty,
    OldExcel,
    NotTabular,
    NoHeader,
    MissingColumns { account: bool, full_name: bool },
    Unreadable(String),
}

impl FileProblem {
    pub fn code(&self) -> &'static str {
        match self {
            FileProblem::Empty => "empty_file",
            FileProblem::OldExcel => "old_excel_format",
            FileProblem::NotTabular => "not_csv_or_xlsx",
            FileProblem::NoHeader => "no_header",
            FileProblem::MissingColumns { .. } => "missing_columns",
            FileProblem::Unreadable(_) => "unreadable",
        }
    }

    /// What the billing team is told, in Russian.
    pub fn message(&self) -> String {
        match self {
            FileProblem::Empty => "Файл пустой: в нём нет ни одной строки.".into(),
            FileProblem::OldExcel => {
                "Файл в старом формате Excel (.xls). Сохраните его как «Книга Excel (.xlsx)» или CSV и загрузите снова.".into()
            }
            FileProblem::NotTabular => "Это не таблица CSV и не файл Excel (.xlsx). Выгрузите лицевые счета в CSV или XLSX.".into(),
            FileProblem::NoHeader => {
                "Не найдена строка заголовков. Первая строка таблицы должна называть столбцы: «Лицевой счёт», «ФИО», «Адрес», «Сальдо».".into()
            }
            FileProblem::MissingColumns { account, full_name } => {
                let mut missing = Vec::new();
                if *account {
                    missing.push("«Лицевой счёт» (или «ЛС», «Номер ЛС»)");
                }
                if *full_name {
                    missing.push("«ФИО» (или «Плательщик», «Собственник»)");
                }
                format!("В заголовке нет обязательных столбцов: {}.", missing.join(", "))
            }
            FileProblem::Unreadable(detail) => format!("Файл не удалось прочитать: {detail}."),
        }
    }
}

fn read_prefix(path: &Path) -> Result<Vec<u8>, FileProblem> {
    let file = File::open(path).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    file.take(SNIFF_BYTES as u64).read_to_end(&mut prefix).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
    Ok(prefix)
}

fn encoding_of(prefix: &[u8]) -> &'static Encoding {
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return UTF_8;
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => UTF_8,
        // Cut in the middle of a character at the end of the sample: still UTF-8.
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1251,
    }
}

/// The delimiter that splits the first lines most consistently.
fn delimiter_of(sample: &str) -> u8 {
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
    let count = |delimiter: char| -> usize {
        lines
            .iter()
            .map(|line| {
                let mut quoted = false;
                line.chars()
                    .filter(|c| {
                        if *c == '"' {
                            quoted = !quoted;
                        }
                        !quoted && *c == delimiter
                    })
                    .count()
            })
            .sum()
    };
    [(b';', count(';')), (b'\t', count('\t')), (b',', count(','))]
        .into_iter()
        .max_by_key(|(delimiter, n)| (*n, *delimiter == b';'))
        .map_or(b';', |(delimiter, _)| delimiter)
}

/// Tells the format from the first bytes.
pub fn detect(path: &Path) -> Result<Format, FileProblem> {
    let prefix = read_prefix(path)?;
    let meaningful = prefix.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(&prefix);
    if meaningful.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileProblem::Empty);
    }
    if prefix.starts_with(b"PK\x03\x04") {
        return Ok(Format::Xlsx);
    }
    if prefix.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(FileProblem::OldExcel);
    }
    if prefix.contains(&0) {
        return Err(FileProblem::NotTabular);
    }
    let encoding = encoding_of(&prefix);
    let (sample, _, _) = encoding.decode(meaningful);
    Ok(Format::Csv { encoding: encoding.name(), delimiter: delimiter_of(&sample) })
}

/// Calls `visit` with every row of the file, in order, until it breaks.
pub fn visit_rows(
    path: &Path,
    format: Format,
    mut visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<(), FileProblem> {
    match format {
        Format::Csv { encoding, delimiter } => {
            let encoding = Encoding::for_label(encoding.as_bytes()).unwrap_or(UTF_8);
            let file = File::open(path).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
            let decoded = DecodeReaderBytesBuilder::new().encoding(Some(encoding)).bom_sniffing(true).build(file);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(WithoutCarriageReturns(decoded));
            let mut record = csv::StringRecord::new();
            loop {
                match reader.read_record(&mut record) {
                    Ok(true) => {
                        let line = record.position().map_or(0, csv::Position::line);
                        let row = RawRow { line, cells: record.iter().map(str::to_owned).collect() };
                        if visit(row).is_break() {
                            return Ok(());
                        }
                    }
                    Ok(false) => return Ok(()),
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        return Err(FileProblem::Unreadable(format!("строка {line}: {e}")));
                    }
                }
            }
        }
        Format::Xlsx => {
            let mut workbook: Xlsx<_> =
                open_workbook(path).map_err(|e| FileProblem::Unreadable(format!("XLSX: {e}")))?;
            let Some(sheet) = workbook.sheet_names().first().cloned() else {
                return Err(FileProblem::Empty);
            };
            let mut cells =
                workbook.worksheet_cells_reader(&sheet).map_err(|e| FileProblem::Unreadable(format!("XLSX: {e}")))?;
            let mut current: Option<RawRow> = None;
            while let Some(cell) = cells.next_cell().map_err(|e| FileProblem::Unreadable(format!("XLSX: {e}")))? {
                let (row, column) = cell.get_position();
                let line = u64::from(row) + 1;
                if current.as_ref().is_some_and(|r| r.line != line) {
                    if let Some(done) = current.take() {
                        if visit(done).is_break() {
                            return Ok(());
                        }
                    }
                }
                let row = current.get_or_insert_with(|| RawRow { line, cells: Vec::new() });
                let column = column as usize;
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
    }
}

/// Drops CR bytes, so CRLF files read as LF ones: the csv crate numbers the
/// lines of CRLF input one too low after the first record.
struct WithoutCarriageReturns<R>(R);

impl<R: Read> Read for WithoutCarriageReturns<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = self.0.read(buffer)?;
            if read == 0 {
                return Ok(0);
            }
            let filled = buffer.get_mut(..read).unwrap_or_default();
            let mut kept = 0;
            for i in 0..filled.len() {
                let Some(byte) = filled.get(i).copied() else { break };
                if byte != b'\r' {
                    if let Some(slot) = filled.get_mut(kept) {
                        *slot = byte;
                    }
                    kept += 1;
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Int(i) => i.to_string(),
        // Account numbers typed as numbers come back as floats.
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::DateTime(d) => d.as_f64().to_string(),
        DataRef::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_that_splits_lines() {
        assert_eq!(delimiter_of("ЛС;ФИО;Адрес\n1;Иванов И.И.;\"г. Москва, ул. Лесная\"\n"), b';');
        assert_eq!(delimiter_of("ЛС,ФИО\n1,Иванов И.И.\n"), b',');
        assert_eq!(delimiter_of("ЛС\tФИО\tАдрес\n1\tИванов И.И.\tМосква, Лесная\n"), b'\t');
        assert_eq!(delimiter_of("ЛС;ФИО\n1;\"Иванов, И.И.\"\n"), b';');
    }

    fn rows_of(bytes: &[u8]) -> (Format, Vec<RawRow>) {
        let path = std::env::temp_dir().join(format!("rows-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        let format = detect(&path).unwrap();
        let mut rows = Vec::new();
        visit_rows(&path, format, |row| {
            rows.push(row);
            ControlFlow::Continue(())
        })
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        (format, rows)
    }

    #[test]
    fn reads_windows_1251_with_crlf_and_quoted_delimiters() {
        let text = "ЛС;ФИО;Адрес\r\n1;Иванов И.И.;\"г. Москва; ул. Лесная\"\r\n2;Петров П.П.;\r\n";
        let (bytes, _, _) = WINDOWS_1251.encode(text);
        let (format, rows) = rows_of(&bytes);
        assert_eq!(format, Format::Csv { encoding: "windows-1251", delimiter: b';' });
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 3], "{rows:?}");
        assert_eq!(rows[1].cells, ["1", "Иванов И.И.", "г. Москва; ул. Лесная"]);
    }

    #[test]
    fn utf8_and_windows_1251_are_told_apart() {
        assert_eq!(encoding_of("Лицевой счёт".as_bytes()), UTF_8);
        let (cp1251, _, _) = WINDOWS_1251.encode("Лицевой счёт");
        assert_eq!(encoding_of(&cp1251), WINDOWS_1251);
        let cut = &"Лицевой".as_bytes()[..3];
        assert_eq!(encoding_of(cut), UTF_8);
    }
}
