//! Billing exports: the files the billing team uploads, read row by row and
//! checked with the domain types. The import itself (S3, DynamoDB, report)
//! is in `usecases::import`.

pub mod columns;
pub mod rows;
pub mod source;

pub use columns::{Column, ColumnMap, MissingColumns};
pub use rows::{RawRow, RejectedRow, parse_balance, validate};
pub use source::{FileProblem, Format, detect, visit_rows};
