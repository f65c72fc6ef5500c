#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The billing team's path: a file uploaded to `incoming/` of the local
//! bucket triggers the import through the S3 notification, as in AWS.

use cabinet::domain::AccountNumber;
use e2e::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn upload(app: &TestApp, name: &str, body: Vec<u8>) -> Value {
    let report = app.stack.upload_billing_bytes(name, body).await.expect("the import reports");
    serde_json::from_str(&report).expect("a JSON report")
}

async fn stored(app: &TestApp, account: &str) -> Option<cabinet::domain::BillingAccount> {
    app.stack.services.store.billing.get(&AccountNumber::parse(account).unwrap()).await.unwrap()
}

fn cp1251(text: &str) -> Vec<u8> {
    encoding_rs::WINDOWS_1251.encode(text).0.into_owned()
}

const ROWS: &str = "Лицевой счёт;ФИО;Адрес;Сальдо\n500001;Кузнецов Андрей Викторович;\"г. Москва; ул. Лесная, д. 1\";1 234,56\n500002;Зайцева Е. В.;г. Москва, ул. Лесная, д. 2;-150.00\n";

#[tokio::test]
async fn every_encoding_and_delimiter_loads_the_same_accounts() {
    let app = spawn_app().await;
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("utf8.csv", ROWS.as_bytes().to_vec()),
        ("utf8-bom.csv", [&[0xEF, 0xBB, 0xBF][..], ROWS.as_bytes()].concat()),
        ("cp1251-crlf.csv", cp1251(&ROWS.replace('\n', "\r\n"))),
        (
            "comma.csv",
            ROWS.replace(';', ",")
                .replace("\"г. Москва, ул. Лесная, д. 2\"", "x")
                .replace("г. Москва, ул. Лесная, д. 2", "\"г. Москва, ул. Лесная, д. 2\"")
                .replace("1 234,56", "\"1 234,56\"")
                .into_bytes(),
        ),
        (
            "tab.tsv",
            ROWS.replace(';', "\t")
                .replace("\"г. Москва\t ул. Лесная, д. 1\"", "\"г. Москва; ул. Лесная, д. 1\"")
                .into_bytes(),
        ),
        (
            "export.xlsx",
            xlsx(&[
                vec!["Выгрузка из 1С от 25.11.2026"],
                vec!["Лицевой счёт", "ФИО", "Адрес", "Сальдо"],
                vec!["500001", "Кузнецов Андрей Викторович", "г. Москва; ул. Лесная, д. 1", "1234.56"],
                vec!["500002", "Зайцева Е. В.", "г. Москва, ул. Лесная, д. 2", "-150"],
            ]),
        ),
    ];
    for (name, body) in variants {
        let report = upload(&app, name, body).await;
        assert_eq!(report["status"], "loaded", "{name}: {report}");
        assert_eq!(report["rows_read"], 2, "{name}: {report}");
        assert_eq!(report["rejected"], 0, "{name}: {report}");
        let first = stored(&app, "500001").await.expect("loaded");
        assert_eq!(first.full_name.as_str(), "Кузнецов Андрей Викторович", "{name}");
        assert_eq!(first.balance.map(|m| m.0), Some(123456), "{name}");
        let second = stored(&app, "500002").await.expect("loaded");
        assert_eq!(second.balance.map(|m| m.0), Some(-15000), "{name}");
    }
    let first = stored(&app, "500001").await.unwrap();
    assert_eq!(first.address.as_deref(), Some("г. Москва; ул. Лесная, д. 1"), "a quoted ; stays in the address");
}

#[tokio::test]
async fn the_report_lists_columns_and_the_source_is_marked_processed() {
    let app = spawn_app().await;
    let body = "Номер ЛС;Плательщик;Площадь;Долг;Примечание\n600001;Орлов О. О.;40;0;\n";
    let report = upload(&app, "cols.csv", body.as_bytes().to_vec()).await;
    assert_eq!(report["columns_recognized"], json!(["Номер ЛС", "Плательщик", "Долг"]));
    assert_eq!(report["columns_ignored"], json!(["Площадь", "Примечание"]));
    assert!(report["duration_ms"].is_number());
    assert_eq!(report["format"], "CSV, UTF-8, delimiter ;");
    let tags = app.stack.billing_object_tags("incoming/cols.csv").await;
    assert!(tags.contains(&("import-status".to_owned(), "processed".to_owned())), "{tags:?}");
}

#[tokio::test]
async fn bad_rows_are_reported_with_line_column_and_reason_and_good_rows_load() {
    let app = spawn_app().await;
    let body = "ЛС;ФИО;Сальдо\n\
                700001;Белов Борис Борисович;10\n\
                ;Без Счёта Иванович;0\n\
                70a002;Буквы В Счёте;0\n\
                700003;;0\n\
                700004;Одна;0\n\
                700005;Белова Вера Борисовна;много\n\
                700006;Дубль Первый Вариант;1\n\
                700006;Дубль Второй Вариант;2\n\
                700007;Повтор Одинаковый Строки;5\n\
                700007;Повтор Одинаковый Строки;5\n";
    let report = upload(&app, "bad.csv", body.as_bytes().to_vec()).await;
    // An unreadable balance (700005) no longer keeps the account out: it
    // loads without a balance and the warnings report says why.
    assert_eq!(report["loaded"], 3, "{report}");
    assert_eq!(report["rejected"], 6, "{report}");
    assert_eq!(report["warnings"], 1, "{report}");
    assert_eq!(stored(&app, "700005").await.expect("loaded").balance, None);
    let warnings = app.stack.billing_object(report["warnings_report"].as_str().unwrap()).await.expect("the warnings");
    let warnings = String::from_utf8(warnings[3..].to_vec()).unwrap();
    assert!(warnings.lines().nth(1).unwrap().starts_with("7;Сальдо;"), "{warnings}");
    assert!(stored(&app, "700001").await.is_some());
    assert!(stored(&app, "700007").await.is_some());
    assert!(stored(&app, "700006").await.is_none(), "conflicting duplicates are not loaded");

    let csv = app.stack.billing_object(report["rejected_rows_report"].as_str().unwrap()).await.expect("the CSV report");
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM for Excel");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Строка;Столбец;Причина;Значение");
    let expected = [
        ("3", "Лицевой счёт"),
        ("4", "Лицевой счёт"),
        ("5", "ФИО"),
        ("6", "ФИО"),
        ("8", "Лицевой счёт"),
        ("9", "Лицевой счёт"),
    ];
    assert_eq!(lines.len(), expected.len() + 1, "{text}");
    for (line, (number, column)) in lines[1..].iter().zip(expected) {
        assert!(line.starts_with(&format!("{number};{column};")), "{line}");
    }
}

#[tokio::test]
async fn whole_file_problems_change_nothing_and_are_reported() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", Vec::new(), "empty_file"),
        ("spaces.csv", b"\n \r\n".to_vec(), "empty_file"),
        ("scan.pdf", b"%PDF-1.4\x00\x01\x02binary".to_vec(), "not_csv_or_xlsx"),
        ("old.xls", vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0], "old_excel_format"),
        (
            "noheader.csv",
            b"800001;\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd\xd0\xbe\xd0\xb2 \xd0\x98.\xd0\x98.\n".to_vec(),
            "no_header",
        ),
        ("noname.csv", "ЛС;Адрес\n800001;Москва\n".as_bytes().to_vec(), "missing_columns"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip".to_vec(), "unreadable"),
    ];
    for (name, body, code) in cases {
        let report = upload(&app, name, body).await;
        assert_eq!(report["status"], "file_rejected", "{name}: {report}");
        assert_eq!(report["problem"]["code"], code, "{name}: {report}");
        assert!(!report["problem"]["message"].as_str().unwrap_or_default().is_empty());
        assert_eq!(report["loaded"], 0);
    }
    assert!(stored(&app, "800001").await.is_none());
}

#[tokio::test]
async fn uploading_the_same_file_twice_changes_nothing_the_second_time() {
    let app = spawn_app().await;
    let first = upload(&app, "twice.csv", ROWS.as_bytes().to_vec()).await;
    assert_eq!(first["loaded"], 2);
    let again = upload(&app, "twice-copy.csv", ROWS.as_bytes().to_vec()).await;
    assert_eq!((again["loaded"].clone(), again["unchanged"].clone()), (json!(0), json!(2)), "{again}");
}

#[tokio::test]
async fn a_payer_change_suspends_the_resident_and_tells_them() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    assert_eq!(app.login_when_ready(&email, PASSWORD).await.status, StatusCode::OK);

    let body = "ЛС;ФИО;Адрес;Сальдо\n100200300;Сидоров Семён Семёнович;г. Москва, ул. Садовая, д. 5, кв. 12;0\n";
    let report = upload(&app, "new-owner.csv", body.as_bytes().to_vec()).await;
    assert_eq!(report["residents_suspended"], 1, "{report}");

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.code(), "identification_pending", "{}", login.text);
    let letters = app.letters_to(&email).await;
    assert!(letters.iter().any(|l| l.subject.contains("приостановлен")), "{letters:?}");
    assert!(!letters.iter().any(|l| l.text.contains("Сидоров")), "the new payer is not revealed");

    let again = upload(&app, "new-owner-again.csv", body.as_bytes().to_vec()).await;
    assert_eq!(again["residents_suspended"], 0, "no second round: {again}");

    let outcome = app.login_when_ready(&email, PASSWORD).await;
    assert_eq!(outcome.code(), "identification_failed", "{}", outcome.text);
    let suspensions = app.letters_to(&email).await.iter().filter(|l| l.subject.contains("приостановлен")).count();
    assert_eq!(suspensions, 1);
}

#[tokio::test]
async fn a_resident_registers_against_an_imported_file() {
    let app = spawn_app().await;
    let body = cp1251(
        "ЛС,ФИО плательщика,Адрес,К оплате\r\n900001,Лебедева Анна Сергеевна,\"г. Москва, ул. Новая, д. 3\",\"2 000,00\"\r\n",
    );
    assert_eq!(upload(&app, "new.csv", body).await["loaded"], 1);
    let email = unique_email();
    let mut registration = registration(&email);
    registration["account"] = json!("900 001");
    // The record has full names, so the resident types them (issue 10:
    // initials match only initials on record); case still does not matter.
    registration["full_name"] = json!("лебедева анна сергеевна");
    let answer = app.post_json("/register", &registration).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    let path = app.confirmation_path(&email).await;
    app.get(&path, "application/json", None).await;
    let cookie = app.login_when_ready(&email, PASSWORD).await.session_cookie().expect("a session");
    let account = app.get("/account", "application/json", Some(&cookie)).await.json();
    assert_eq!(account["address"], "г. Москва, ул. Новая, д. 3");
    assert_eq!(account["balance"], 2000.0);
}

#[tokio::test]
async fn a_duplicated_s3_event_redoes_nothing() {
    let app = spawn_app().await;
    let report = upload(&app, "dup-event.csv", ROWS.as_bytes().to_vec()).await;
    assert_eq!(report["loaded"], 2);
    let bucket = app.stack.billing_bucket.clone().expect("a billing bucket");
    let again = cabinet::usecases::import::import_object(&app.stack.services, &bucket, "incoming/dup-event.csv")
        .await
        .expect("the import runs");
    assert!(matches!(again, cabinet::usecases::import::Imported::AlreadyProcessed), "{again:?}");
}

/// The corpus in `tests/data/billing/`: files shaped as billing programs,
/// spreadsheets and people make them (`make_corpus.py` names what each one
/// imitates), each uploaded through S3 and compared with the report it must
/// give: counts, the problem of a rejected file, and every rejected line
/// with its column and reason.
#[tokio::test]
async fn every_file_of_the_corpus_gives_its_expected_report() {
    let app = spawn_app().await;
    let folder = local_stack::repo_root().join("tests/data/billing");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".expected.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "the corpus has {} files", names.len());

    for expected_name in names {
        let name = expected_name.trim_end_matches(".expected.json");
        let expected: Value = serde_json::from_slice(&std::fs::read(folder.join(&expected_name)).unwrap()).unwrap();
        let report = upload(&app, name, std::fs::read(folder.join(name)).unwrap()).await;
        for field in ["status", "rows_read", "loaded", "unchanged", "skipped", "rejected", "warnings"] {
            assert_eq!(report[field], expected[field], "{name} ({}): {field} in {report:#}", expected["imitates"]);
        }
        if let Some(problem) = expected.get("problem") {
            assert_eq!(report["problem"]["code"], problem["code"], "{name}: {report:#}");
            if let Some(lines) = problem.get("first_lines") {
                assert_eq!(&report["problem"]["first_lines"], lines, "{name}: the report quotes the first lines");
            }
        }
        let rejected_rows = expected["rejected_rows"].as_array().unwrap();
        if rejected_rows.is_empty() {
            assert!(report["rejected_rows_report"].is_null(), "{name}: {report:#}");
            continue;
        }
        let csv = app.stack.billing_object(report["rejected_rows_report"].as_str().unwrap()).await.unwrap();
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(text.as_bytes());
        let got: Vec<(String, String, String)> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_owned(), r[1].to_owned(), r[2].to_owned())
            })
            .collect();
        let want: Vec<(String, String, String)> = rejected_rows
            .iter()
            .map(|r| {
                (
                    r["line"].to_string(),
                    r["column"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: rejected lines");
    }
    // The turnover statement's closing balance is debit minus credit.
    assert_eq!(stored(&app, "910029000").await.unwrap().balance.map(|m| m.0), Some(-25050), "an overpayment");
    assert_eq!(stored(&app, "910029001").await.unwrap().balance.map(|m| m.0), Some(150000), "a debt");
}

/// The committed corpus is exactly what `make_corpus.py` writes, so the
/// script stays the documentation of every file.
#[test]
fn the_corpus_is_what_its_script_writes() {
    let folder = local_stack::repo_root().join("tests/data/billing");
    let out = std::env::temp_dir().join(format!("corpus-{}", uuid::Uuid::new_v4()));
    let status = std::process::Command::new("python3")
        .arg(folder.join("make_corpus.py"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("python3 runs the corpus script");
    assert!(status.success());
    let mut written = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        let committed = std::fs::read(folder.join(entry.file_name()))
            .unwrap_or_else(|_| panic!("{:?} is not committed", entry.file_name()));
        assert!(committed == std::fs::read(entry.path()).unwrap(), "{:?} differs from the script's", entry.file_name());
        written += 1;
    }
    std::fs::remove_dir_all(&out).unwrap();
    assert!(written >= 50, "{written} files written");
}

/// A formula typed into a cell reaches the rejected-rows report defused,
/// so opening the report in Excel runs nothing.
#[tokio::test]
async fn formulas_in_cells_are_defused_in_the_reports() {
    let app = spawn_app().await;
    let body = "ЛС;ФИО;Сальдо\n=HYPERLINK(\"http://evil\");Иванов Иван Иванович;0\n950001;Петров Пётр Петрович;@SUM(A1)\n+79160000000;Сидоров Сидор Сидорович;0\n";
    let report = upload(&app, "formulas.csv", body.as_bytes().to_vec()).await;
    assert_eq!((report["rejected"].clone(), report["warnings"].clone()), (json!(2), json!(1)), "{report:#}");
    let rejected = app.stack.billing_object(report["rejected_rows_report"].as_str().unwrap()).await.unwrap();
    let rejected = String::from_utf8(rejected[3..].to_vec()).unwrap();
    assert!(rejected.contains(";\"'=HYPERLINK(\"\"http://evil\"\")\""), "{rejected}");
    assert!(rejected.contains(";'+79160000000"), "{rejected}");
    let warnings = app.stack.billing_object(report["warnings_report"].as_str().unwrap()).await.unwrap();
    let warnings = String::from_utf8(warnings[3..].to_vec()).unwrap();
    assert!(warnings.contains(";'@SUM(A1)"), "{warnings}");
}

/// An import that fails for good (here the object is gone before the
/// import runs) is retried as Lambda retries it, then its event reaches
/// the on-failure queue, and the billing team still gets a report.
#[tokio::test]
async fn a_failed_import_still_leaves_a_report() {
    let app = spawn_app().await;
    app.stack.notify_billing_upload("incoming/vanished.csv").await.expect("the notification is queued");
    let mut report = None;
    for _ in 0..300 {
        if let Some(bytes) = app.stack.billing_object("reports/vanished.csv.json").await {
            report = Some(serde_json::from_slice::<Value>(&bytes).expect("a JSON report"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let report = report.expect("a failure report within 30 s");
    assert_eq!(report["status"], "import_failed", "{report:#}");
    assert_eq!(report["problem"]["code"], "import_failed");
    assert!(report["problem"]["message"].as_str().unwrap().contains("Загрузите файл ещё раз"), "{report:#}");
    assert_eq!(report["attempts"], 3, "Lambda's two retries, then the destination");
    assert_eq!(report["file"], "incoming/vanished.csv");
}

/// The XLSX that made the old importer grow past 2.6 GB: a 715 KB file
/// holding one 700 MB shared string. It is refused while unpacking, with
/// a report, and nothing is loaded.
#[tokio::test]
async fn a_zip_bomb_of_a_shared_string_ends_in_a_report() {
    let app = spawn_app().await;
    // Written by zlib through Python: the same 700 MB, in about a second.
    let path = std::env::temp_dir().join(format!("bomb-{}.xlsx", uuid::Uuid::new_v4()));
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
        part.write(b"<sst><si><t>")
        chunk = b"a" * (1 << 20)
        for _ in range(700):
            part.write(chunk)
        part.write(b"</t></si></sst>")
"#;
    let status = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).status().unwrap();
    assert!(status.success());
    let bomb = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(bomb.len() < 4_000_000, "{} bytes", bomb.len());
    let report = upload(&app, "bomb.xlsx", bomb).await;
    assert_eq!(report["status"], "file_rejected", "{report:#}");
    assert_eq!(report["problem"]["code"], "xlsx_too_large_unpacked", "{report:#}");
    assert_eq!(report["loaded"], 0);
}
