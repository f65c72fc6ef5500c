//! Billing exports: the files the billing team uploads, read row by row and
//! checked with the domain types. The import itself (S3, DynamoDB, report)
//! is in `usecases::import`.

pub mod cells;
pub mod columns;
pub mod header;
mod plain;
pub mod rows;
pub mod source;
mod split;
pub mod spool;

pub use cells::{NotAnAmount, parse_balance};
pub use columns::{Column, ColumnMap, MissingColumns, PayerColumns};
pub use header::{Header, HeaderSearch, find_header};
pub use rows::{AccountRef, RawRow, RowOutcome, RowOutcomeRef, RowProblem, classify, classify_ref};
pub use source::{FileProblem, Format, Table, open, visit_outcomes, visit_row_refs, visit_rows};
