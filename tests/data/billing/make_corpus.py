#!/usr/bin/env python3
"""Writes the billing export corpus: files shaped as real billing programs,
spreadsheets and people make them, each with the report it must give.

    python3 tests/data/billing/make_corpus.py [--out DIR]
    python3 tests/data/billing/make_corpus.py --xlsx-rows N --out FILE.xlsx   (benchmark input)

Every file imitates one program (named in its expected report as
"imitates"). The output is deterministic, so `tests/billing_corpus.rs` can
check that the committed files are what this script writes. Each case
uses its own range of account numbers, so all of them can be loaded into
one table and each report counts only its own rows.

Row fates, from which the expected report is computed:
  load    an account row that is loaded
  warn    loaded, with an address or balance left out (a warnings line)
  repeat  the same row again: read, loaded once
  skip    not an account row (blank, total, group heading, repeated header)
  reject  not loaded, with (column, reason) in the rejected-rows report
"""

import argparse
import codecs
import io
import json
import os
import sys
import zipfile

# The reasons the importer gives, exactly as in shared/src/billing/rows.rs.
NO_ACCOUNT = ("Лицевой счёт", "Не указан лицевой счёт.")
NOT_DIGITS = ("Лицевой счёт", "В лицевом счёте есть символы, кроме цифр.")
EXPONENT = ("Лицевой счёт", "Excel записал номер в виде 1,23E+08, и цифры могли потеряться. Задайте столбцу формат «Текстовый» (или расширьте его) и выгрузите файл снова.")
FRACTION = ("Лицевой счёт", "Номер записан как дробное число или с разделителем тысяч, и его нельзя прочитать наверняка. Задайте столбцу формат «Текстовый» и выгрузите файл снова.")
NO_NAME = ("ФИО", "Не указано ФИО плательщика.")
BAD_NAME = ("ФИО", "ФИО не похоже на фамилию с именем (и отчеством или инициалами): проверьте буквы и порядок слов.")
CONFLICT = ("Лицевой счёт", "Лицевой счёт встречается в файле несколько раз с разными данными; ни одна из этих строк не загружена.")

SURNAMES = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева", "Козлов", "Новикова",
            "Морозов", "Петрова", "Волков", "Соловьёва", "Васильев", "Зайцева", "Павлов", "Семёнова",
            "Голубев", "Виноградова", "Богданов", "Воробьёва", "Фёдоров", "Михайлова", "Беляев", "Тарасова",
            "Римский-Корсаков", "Салтыкова-Щедрина"]
GIVEN = [("Иван", "Ивановна"), ("Анна", "Сергеевна"), ("Пётр", "Петрович"), ("Елена", "Викторовна"),
         ("Алексей", "Алексеевич"), ("Ольга", "Николаевна"), ("Дмитрий", "Дмитриевич"), ("Наталья", "Юрьевна")]
STREETS = ["ул. Ленина", "пр-т Мира", "ул. Советская", "наб. Афанасия Никитина", "б-р Радищева"]


def person(i):
    surname = SURNAMES[i % len(SURNAMES)]
    given, patronymic = GIVEN[i % len(GIVEN)]
    female = surname.endswith("а")
    if female and not given.endswith("а"):
        given, patronymic = "Мария", "Ивановна"
    if not female and given.endswith("а"):
        given, patronymic = "Сергей", "Иванович"
    if not female and patronymic.endswith("вна"):
        patronymic = patronymic[:-3] + "вич"
    if female and patronymic.endswith("вич"):
        patronymic = patronymic[:-3] + "вна"
    return surname, given, patronymic


def address(i):
    return f"г. Тверь, {STREETS[i % len(STREETS)]}, д. {i % 40 + 1}, кв. {i % 120 + 1}"


class Case:
    def __init__(self, number, name, imitates):
        self.name = name
        self.imitates = imitates
        self.base = 910_000_000 + number * 1000
        self.fates = []  # (line, fate, detail)

    def account(self, k):
        return str(self.base + k)

    def expected(self, status="loaded", problem=None):
        counted = [f for f in self.fates if f[1] != "absent"]
        report = {
            "imitates": self.imitates,
            "status": status,
            "rows_read": len(counted),
            "loaded": sum(1 for f in counted if f[1] in ("load", "warn")),
            "unchanged": 0,
            "skipped": sum(1 for f in counted if f[1] == "skip"),
            "rejected": sum(1 for f in counted if f[1] == "reject"),
            "warnings": sum(1 for f in counted if f[1] == "warn"),
            "rejected_rows": [
                {"line": line, "column": detail[0], "reason": detail[1]}
                for line, fate, detail in counted if fate == "reject"
            ],
        }
        if problem:
            report["problem"] = problem
        return report


def csv_text(rows, delimiter, quote_all=False):
    out = []
    for row in rows:
        cells = []
        for cell in row:
            needs = quote_all or any(c in cell for c in (delimiter, '"', "\n", "\r")) or cell != cell.strip(" ")
            cells.append('"' + cell.replace('"', '""') + '"' if needs else cell)
        out.append(delimiter.join(cells))
    return out


def join_lines(lines, newline="\r\n", final=True):
    return newline.join(lines) + (newline if final else "")


# --- XLSX, written part by part as Excel does (deterministic timestamps) ---

def col_name(i):
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def xlsx_bytes(sheets, inline=False, merges=None, raw_cells=None):
    """sheets: [(name, rows)]; a cell is str (text), int/float (number),
    ("date", serial) (a date cell) or ("text-number", "123") (number stored
    as text). merges: {sheet index: ["B1:D1", ...]}. raw_cells: {sheet
    index: extra <c> XML appended to the first row}."""
    merges = merges or {}
    raw_cells = raw_cells or {}
    strings, index = [], {}

    def shared(s):
        if s not in index:
            index[s] = len(strings)
            strings.append(s)
        return index[s]

    parts = {}
    for n, (_, rows) in enumerate(sheets, start=1):
        xml = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>']
        for r, row in enumerate(rows, start=1):
            xml.append(f'<row r="{r}">')
            for c, cell in enumerate(row):
                ref = f"{col_name(c)}{r}"
                if cell == "" or cell is None:
                    continue
                if isinstance(cell, tuple) and cell[0] == "date":
                    xml.append(f'<c r="{ref}" s="1"><v>{cell[1]}</v></c>')
                elif isinstance(cell, tuple) and cell[0] == "text-number":
                    xml.append(f'<c r="{ref}" t="s" s="2"><v>{shared(cell[1])}</v></c>')
                elif isinstance(cell, (int, float)):
                    xml.append(f'<c r="{ref}"><v>{cell}</v></c>')
                elif inline:
                    xml.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{esc(cell)}</t></is></c>')
                else:
                    xml.append(f'<c r="{ref}" t="s"><v>{shared(cell)}</v></c>')
            if r == 1 and (n - 1) in raw_cells:
                xml.append(raw_cells[n - 1])
            xml.append("</row>")
        xml.append("</sheetData>")
        if merges.get(n - 1):
            xml.append(f'<mergeCells count="{len(merges[n - 1])}">')
            xml.extend(f'<mergeCell ref="{m}"/>' for m in merges[n - 1])
            xml.append("</mergeCells>")
        xml.append("</worksheet>")
        parts[f"xl/worksheets/sheet{n}.xml"] = "".join(xml)
    sheet_entries = "".join(
        f'<sheet name="{esc(name)}" sheetId="{n}" r:id="rId{n}"/>' for n, (name, _) in enumerate(sheets, start=1))
    rels = "".join(
        f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, len(sheets) + 1))
    k = len(sheets)
    rels += (f'<Relationship Id="rId{k + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
             f'<Relationship Id="rId{k + 2}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>')
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, len(sheets) + 1))
    parts["[Content_Types].xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        f'{overrides}'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>')
    parts["_rels/.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>')
    parts["xl/workbook.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets>{sheet_entries}</sheets></workbook>')
    parts["xl/_rels/workbook.xml.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>')
    parts["xl/styles.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '</styleSheet>')
    sst = "".join(f'<si><t xml:space="preserve">{esc(s)}</t></si>' for s in strings)
    parts["xl/sharedStrings.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">{sst}</sst>')
    buffer = io.BytesIO()
    order = ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml",
             "xl/sharedStrings.xml"] + [f"xl/worksheets/sheet{n}.xml" for n in range(1, len(sheets) + 1)]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, parts[name].encode("utf-8"))
    return buffer.getvalue()


# --- The cases ---

def standard_rows(case, count, start_line, k0=0, balance=lambda k: f"{(k * 1234.56) % 9000:.2f}".replace(".", ",")):
    rows = []
    for k in range(k0, k0 + count):
        s, g, p = person(case.base + k)
        rows.append([case.account(k), f"{s} {g} {p}", address(k), balance(k)])
        case.fates.append((start_line + len(rows) - 1, "load", None))
    return rows


def title_block():
    return [["Выгрузка лицевых счетов"], ["ООО «Потенциал», г. Тверь"], ["Период: ноябрь 2026 г."]]


def make_cases():
    cases = []

    def add(case, data, status="loaded", problem=None):
        cases.append((case, data, case.expected(status, problem)))

    # 1. The shape from the issue: cp1251, `;`, more commas than semicolons, no quotes.
    c = Case(1, "01-1c-zhkh-cp1251-semicolon.csv", "1С: Учёт в управляющих компаниях ЖКХ 3.0, «Выгрузка в CSV» (Windows-1251, ;)")
    lines = [";".join(r) for r in title_block()] + [""]
    lines.append("Л/С;ФИО плательщика;Адрес;Сальдо")
    header_line = len(lines)
    rows = standard_rows(c, 12, header_line + 1)
    lines += [";".join(r) for r in rows]
    lines.append("Итого;;;45 123,45")
    c.fates.append((len(lines), "skip", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 2. The same, tab-separated, as 1C's «Сохранить как текст».
    c = Case(2, "02-1c-zhkh-cp1251-tab.txt", "1С: Учёт в управляющих компаниях ЖКХ 3.0, табличный документ → «Текстовый документ» (Windows-1251, tab)")
    lines = ["\t".join(r) for r in title_block()]
    lines.append("Л/С\tФИО плательщика\tАдрес\tСальдо")
    rows = standard_rows(c, 10, len(lines) + 1)
    lines += ["\t".join(r) for r in rows]
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 3. Every field quoted.
    c = Case(3, "03-1c-buh-quoted.csv", "1С:Бухгалтерия 8.3, обработка «Выгрузка в CSV» с кавычками (UTF-8 с BOM, ;)")
    lines = csv_text([["Лицевой счет", "ФИО", "Адрес", "Задолженность"]], ";", quote_all=True)
    rows = standard_rows(c, 8, 2)
    lines += csv_text(rows, ";", quote_all=True)
    add(c, b"\xef\xbb\xbf" + join_lines(lines).encode("utf-8"))

    # 4. Excel ru-RU «CSV (разделители — запятые)»: `;`, cp1251, empty trailing cells.
    c = Case(4, "04-excel-ru-csv.csv", "Microsoft Excel 2016 ru-RU, «CSV (разделители — запятые)» (Windows-1251, ;)")
    lines = ["Номер ЛС;Плательщик;Адрес;Сальдо;;"]
    rows = standard_rows(c, 6, 2, balance=lambda k: "-150,00" if k % 2 else "1 234,56")
    lines += [";".join(r) + ";;" for r in rows]
    lines.append(";;;;;")
    c.fates.append((len(lines), "skip", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 5. LibreOffice Calc, comma-separated, text quoted where needed.
    c = Case(5, "05-libreoffice-comma.csv", "LibreOffice Calc 7.6, «Текст CSV» (UTF-8, ',' , кавычки по необходимости)")
    rows = standard_rows(c, 7, 2, balance=lambda k: f"{k * 100 + 0.5:.2f}")
    lines = csv_text([["ЛС", "ФИО", "Адрес", "Сальдо"]] + rows, ",")
    add(c, join_lines(lines, "\n").encode("utf-8"))

    # 6. Google Sheets: comma, LF, no final newline.
    c = Case(6, "06-google-sheets.csv", "Google Таблицы, «Скачать → CSV» (UTF-8, ',', LF)")
    rows = standard_rows(c, 5, 2, balance=lambda k: f"{k * 10}.00")
    lines = csv_text([["Лицевой счёт", "ФИО собственника", "Адрес", "К оплате"]] + rows, ",")
    add(c, join_lines(lines, "\n", final=False).encode("utf-8"))

    # 7. Name in three columns.
    c = Case(7, "07-1c-reestr-fio-split.csv", "1С: Реестр собственников (Фамилия, Имя, Отчество отдельно; Windows-1251, ;)")
    lines = ["Лицевой счет;Фамилия;Имя;Отчество;Адрес помещения;Сальдо"]
    for k in range(6):
        s, g, p = person(c.base + k)
        lines.append(";".join([c.account(k), s, g, p, address(k), "0"]))
        c.fates.append((len(lines), "load", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 8. Two-row header: «Плательщик» merged over Фамилия | Имя | Отчество.
    c = Case(8, "08-excel-two-row-header.xlsx", "Microsoft Excel 365, шапка в две строки с объединённой ячейкой «Плательщик»")
    rows = [["Реестр лицевых счетов на 01.11.2026"], ["Лицевой счёт", "Плательщик", "", "", "Адрес"],
            ["", "Фамилия", "Имя", "Отчество", ""]]
    for k in range(6):
        s, g, p = person(c.base + k)
        rows.append([c.account(k), s, g, p, address(k)])
        c.fates.append((len(rows), "load", None))
    add(c, xlsx_bytes([("Реестр", rows)], merges={0: ["A2:A3", "B2:D2", "E2:E3"]}))

    # 9. Header wrapped onto a second row.
    c = Case(9, "09-csv-wrapped-header.csv", "1С, печатная форма «Оборотная ведомость» сохранённая в CSV (шапка перенесена на вторую строку)")
    lines = ["Лицевой;ФИО;Сальдо на", "счёт;;конец периода"]
    rows = standard_rows(c, 5, 3)
    lines += [";".join([r[0], r[1], r[3]]) for r in rows]
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 10. Account numbers mangled by Excel.
    c = Case(10, "10-excel-mangled-accounts.csv", "Microsoft Excel ru-RU, номера счетов стали числами («…,0», апостроф, экспонента)")
    lines = ["ЛС;ФИО;Сальдо"]
    shapes = [(f"{c.base + 0}.0", "load"), (f"'{c.base + 1}", "load"), (f"{c.base + 2},00", "load"),
              (f"000{c.base + 3}", "load"), ("9.10010E+08", "reject-exp"), (f"{c.base + 5}", "load"),
              (f"{c.base + 6:,}".replace(",", " ") + ".00", "load"), ("910,010", "reject-fraction")]
    for k, (cell, fate) in enumerate(shapes):
        s, g, p = person(c.base + k)
        lines.append(f"{cell};{s} {g} {p};0")
        if fate == "reject-exp":
            c.fates.append((len(lines), "reject", EXPONENT))
        elif fate == "reject-fraction":
            c.fates.append((len(lines), "reject", FRACTION))
        else:
            c.fates.append((len(lines), "load", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 11. Balances in every notation.
    c = Case(11, "11-balances-every-notation.csv", "Смешанные выгрузки: 1С, Excel ru-RU и en-US, ручная правка (суммы в разных записях)")
    notations = ["1 234,56", "1234.56", "1 234,56 руб.", "-150,00", "(150,00)", "1\u00a0234,56", "1\u2009234,56",
                 "", "-", "1,234.56", "150,00-", "0"]
    lines = ["ЛС;ФИО;Сальдо"]
    for k, balance in enumerate(notations):
        s, g, p = person(c.base + k)
        lines.append(f"{c.account(k)};{s} {g} {p};{balance}")
        c.fates.append((len(lines), "load", None))
    add(c, join_lines(lines).encode("utf-8"))

    # 12. Optional cells that cannot be read: loaded, with warnings.
    c = Case(12, "12-unreadable-balances.csv", "Excel с ошибками формул в столбце сальдо (#ЗНАЧ!, н/д)")
    lines = ["ЛС;ФИО;Адрес;Сальдо"]
    for k, balance in enumerate(["100,00", "#ЗНАЧ!", "н/д", "200,00", "12,345"]):
        s, g, p = person(c.base + k)
        lines.append(f"{c.account(k)};{s} {g} {p};{address(k)};{balance}")
        c.fates.append((len(lines), "load" if balance in ("100,00", "200,00") else "warn", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 13. Footers, subtotals per house, group headings, blank rows, a repeated header.
    c = Case(13, "13-1c-totals-and-groups.csv", "1С, «Оборотно-сальдовая ведомость по лицевым счетам» с группировкой по домам")
    lines = ["ЛС;ФИО;Адрес;Сальдо на 01.11.2026", "1;2;3;4"]
    c.fates.append((2, "skip", None))
    k = 0
    for house in range(2):
        lines.append(f";;{STREETS[house]}, д. {house + 1};")
        c.fates.append((len(lines), "skip", None))
        for _ in range(3):
            s, g, p = person(c.base + k)
            lines.append(f"{c.account(k)};{s} {g} {p};{address(k)};100,00")
            c.fates.append((len(lines), "load", None))
            k += 1
        lines.append(f";Итого по дому {house + 1};;300,00")
        c.fates.append((len(lines), "skip", None))
        lines.append(";;;")
        c.fates.append((len(lines), "skip", None))
        lines.append("ЛС;ФИО;Адрес;Сальдо")
        c.fates.append((len(lines), "skip", None))
    lines.append("ВСЕГО:;;;600,00")
    c.fates.append((len(lines), "skip", None))
    lines.append("Главный бухгалтер ____________ ;;;")
    c.fates.append((len(lines), "skip", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 14. Pipe-separated, from an old DOS-era billing program.
    c = Case(14, "14-pipe-separated.txt", "«Квартплата» для DOS/FoxPro, выгрузка через | (CP866)")
    lines = ["Лиц. счет|ФИО|АДРЕС|ДОЛГ"]
    rows = standard_rows(c, 6, 2)
    lines += ["|".join(r) for r in rows]
    add(c, codecs.encode(join_lines(lines), "cp866"))

    # 29. Turnover statement: closing balance split into debit and credit.
    c = Case(29, "29-1c-osv-debit-credit.csv", "1С, «Оборотно-сальдовая ведомость»: сальдо на конец периода в столбцах «Дебет» и «Кредит»")
    lines = ["Оборотно-сальдовая ведомость за ноябрь 2026 г.",
             "Лицевой счет;Абонент;Сальдо на начало периода;;Обороты за период;;Сальдо на конец периода;",
             ";;Дебет;Кредит;Дебет;Кредит;Дебет;Кредит"]
    for k in range(6):
        s, g, p = person(c.base + k)
        debit, credit = ("1 500,00", "") if k % 2 else ("", "250,50")
        lines.append(";".join([c.account(k), f"{s} {g} {p}", "", "", "1 000,00", "1 000,00", debit, credit]))
        c.fates.append((len(lines), "load", None))
    lines.append("Итого;;;;6 000,00;6 000,00;4 500,00;751,50")
    c.fates.append((len(lines), "skip", None))
    add(c, codecs.encode(join_lines(lines), "cp1251"))

    # 28. KOI8-R, as Unix-era billing scripts wrote it.
    c = Case(28, "28-koi8r-semicolon.csv", "Биллинг на FreeBSD/Linux 2000-х, выгрузка скриптом (KOI8-R, ;)")
    lines = ["Номер ЛС;Собственник;Адрес;Сальдо"]
    rows = standard_rows(c, 5, 2)
    lines += [";".join(r) for r in rows]
    add(c, codecs.encode(join_lines(lines, "\n"), "koi8_r"))

    # 15. Classic Mac line endings (CR only).
    c = Case(15, "15-excel-mac-cr.csv", "Microsoft Excel 2011 для Mac, «CSV (Macintosh)» (CR в конце строк)")
    lines = ["ЛС;ФИО;Сальдо"]
    rows = standard_rows(c, 5, 2)
    lines += [";".join([r[0], r[1], r[3]]) for r in rows]
    add(c, join_lines(lines, "\r").encode("utf-8"))

    # 16. Excel «Текст в Юникоде»: UTF-16 LE with BOM, tab.
    c = Case(16, "16-excel-unicode-text.txt", "Microsoft Excel, «Текст в Юникоде (*.txt)» (UTF-16 LE с BOM, tab)")
    lines = ["Лицевой счет\tФИО\tАдрес\tСальдо"]
    rows = standard_rows(c, 5, 2)
    lines += ["\t".join(r) for r in rows]
    add(c, codecs.BOM_UTF16_LE + join_lines(lines).encode("utf-16-le"))

    # 17. Bad rows, each reason once; duplicates.
    c = Case(17, "17-bad-rows.csv", "Ручная правка выгрузки в Excel: пропуски, опечатки, дубли")
    lines = ["ЛС;ФИО;Сальдо"]
    s, g, p = person(c.base)
    entries = [
        (f"{c.account(0)};{s} {g} {p};10", "load", None),
        (f";{s} {g} {p};0", "reject", NO_ACCOUNT),
        (f"91a{c.base % 1000000 + 2};{s} {g} {p};0", "reject", NOT_DIGITS),
        (f"{c.account(3)};;0", "reject", NO_NAME),
        (f"{c.account(4)};Одна;0", "reject", BAD_NAME),
        (f"{c.account(5)};Дубль Первый Вариант;1", "reject", CONFLICT),
        (f"{c.account(5)};Дубль Второй Вариант;2", "reject", CONFLICT),
        (f"{c.account(6)};Повтор Одинаковый Строки;5", "load", None),
        (f"{c.account(6)};Повтор Одинаковый Строки;5", "repeat", None),
    ]
    for text, fate, detail in entries:
        lines.append(text)
        c.fates.append((len(lines), fate, detail))
    add(c, join_lines(lines).encode("utf-8"))

    # 18. Copy-paste whitespace: NBSP, tabs inside quoted cells, trailing spaces.
    c = Case(18, "18-copy-paste-whitespace.csv", "Таблица, собранная копированием из писем и PDF (NBSP, лишние пробелы, переносы в ячейках)")
    lines = ["ЛС;ФИО;Адрес"]
    for k in range(5):
        s, g, p = person(c.base + k)
        account = c.account(k)
        shaped = [f" {account} ;{s}\u00a0{g}\u00a0{p} ;{address(k)}",
                  f"{account[:3]} {account[3:6]} {account[6:]};\"{s}\t{g}\t{p}\";{address(k)}",
                  f"{account};\"{s}\n{g} {p}\";\"{address(k)}\"",
                  f"{account};  {s}   {g}  {p};{address(k)}  ",
                  f"\u200b{account};{s.upper()} {g.upper()} {p.upper()};{address(k)}"][k]
        lines.append(shaped)
        c.fates.append((len(lines) + (1 if k > 2 else 0), "load", None))
    add(c, join_lines(lines).encode("utf-8"))

    # 19. XLSX with a cover sheet first.
    c = Case(19, "19-excel-cover-sheet.xlsx", "Microsoft Excel 365, книга с титульным листом перед листом данных")
    cover = [["Отчёт для ООО «Потенциал»"], ["Составил: бухгалтерия"], [("date", 46327)]]
    rows = [["Л/С", "ФИО плательщика", "Адрес", "Сальдо"]]
    for k in range(6):
        s, g, p = person(c.base + k)
        rows.append([int(c.account(k)), f"{s} {g} {p}", address(k), round(k * 123.45, 2)])
        c.fates.append((len(rows), "load", None))
    add(c, xlsx_bytes([("Титульный лист", cover), ("Лицевые счета", rows)]))

    # 20. XLSX: numbers stored as text, numeric accounts, a date column not used.
    c = Case(20, "20-excel-text-numbers-and-dates.xlsx", "Microsoft Excel 2019: счета «числом, сохранённым как текст», столбец дат")
    rows = [["Лицевой счёт", "ФИО", "Дата открытия", "Сальдо"]]
    for k in range(6):
        s, g, p = person(c.base + k)
        account = ("text-number", c.account(k)) if k % 2 else float(c.account(k))
        rows.append([account, f"{s} {g} {p}", ("date", 45000 + k), -k * 10.5])
        c.fates.append((len(rows), "load", None))
    add(c, xlsx_bytes([("Лист1", rows)]))

    # 21. XLSX with inline strings and a header cell with a line break.
    c = Case(21, "21-xlsx-inline-strings-wrapped-header.xlsx", "Apache POI SXSSF / 1С:Предприятие 8.3 «Сохранить как XLSX» (inline-строки, перенос в заголовке)")
    rows = [["Лицевой\nсчёт", "ФИО\nплательщика", "Адрес"]]
    for k in range(5):
        s, g, p = person(c.base + k)
        rows.append([c.account(k), f"{s} {g} {p}", address(k)])
        c.fates.append((len(rows), "load", None))
    add(c, xlsx_bytes([("TDSheet", rows)], inline=True))

    # 22. No header at all: the report quotes the first lines.
    c = Case(22, "22-no-header.csv", "Выгрузка без строки заголовков (только данные)")
    lines = [f"{c.account(k)};{' '.join(person(c.base + k))};0" for k in range(3)]
    add(c, join_lines(lines).encode("utf-8"), status="file_rejected",
        problem={"code": "no_header", "first_lines": lines[:5]})

    # 23. No payer column.
    c = Case(23, "23-no-payer-column.csv", "Выгрузка «Начисления» без столбца плательщика")
    lines = ["ЛС;Адрес;Сальдо", f"{c.account(0)};{address(0)};0"]
    add(c, join_lines(lines).encode("utf-8"), status="file_rejected", problem={"code": "missing_columns"})

    # 24. Old Excel.
    c = Case(24, "24-old-excel.xls", "Microsoft Excel 97–2003 (.xls, OLE2)")
    add(c, bytes([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) + bytes(504), status="file_rejected",
        problem={"code": "old_excel_format"})

    # 25. Empty export.
    c = Case(25, "25-empty.csv", "Пустая выгрузка (только BOM и перевод строки)")
    add(c, b"\xef\xbb\xbf\r\n", status="file_rejected", problem={"code": "empty_file"})

    # 26. A cell past Excel's last column (hostile).
    c = Case(26, "26-xlsx-column-past-xfd.xlsx", "Враждебный файл: ячейка в столбце GAAAAAA")
    rows = [["ЛС", "ФИО"], [c.account(0), "Иванов Иван Иванович"]]
    add(c, xlsx_bytes([("Лист1", rows)], raw_cells={0: '<c r="GAAAAAA1"><v>1</v></c>'}), status="file_rejected",
        problem={"code": "too_many_columns"})

    # 27. Formulas in cells: the rejected-rows report defuses them.
    c = Case(27, "27-formula-injection.csv", "Враждебные значения: формулы Excel в ячейках")
    lines = ["ЛС;ФИО;Сальдо", f"=HYPERLINK(\"http://evil\");{' '.join(person(c.base))};0",
             f"{c.account(1)};{' '.join(person(c.base + 1))};@SUM(A1)"]
    c.fates.append((2, "reject", NOT_DIGITS))
    c.fates.append((3, "warn", None))
    add(c, join_lines(lines).encode("utf-8"))
    return cases


def big_xlsx(rows, path):
    """A benchmark workbook: a title row, the header, `rows` accounts, as
    Excel writes it (shared strings, numeric balances). Streamed to disk."""
    header = ["Лицевой счёт", "ФИО плательщика", "Адрес", "Сальдо"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        small = xlsx_bytes([("Лицевые счета", [["Выгрузка лицевых счетов"], header])])
        with zipfile.ZipFile(io.BytesIO(small)) as template:
            for name in template.namelist():
                if name not in ("xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"):
                    archive.writestr(name, template.read(name))
        strings = ["Выгрузка лицевых счетов"] + header
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                        b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
                        b'<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2" t="s"><v>2</v></c>'
                        b'<c r="C2" t="s"><v>3</v></c><c r="D2" t="s"><v>4</v></c></row>')
            chunk = []
            for k in range(rows):
                r = k + 3
                s, g, p = person(k)
                strings.append(f"{s} {g} {p}")
                strings.append(address(k))
                n = len(strings)
                chunk.append(f'<row r="{r}"><c r="A{r}"><v>{100000000 + k}</v></c><c r="B{r}" t="s"><v>{n - 2}</v></c>'
                             f'<c r="C{r}" t="s"><v>{n - 1}</v></c><c r="D{r}"><v>{(k * 37) % 100000 / 100}</v></c></row>')
                if len(chunk) >= 10000:
                    sheet.write("".join(chunk).encode("utf-8"))
                    chunk = []
            sheet.write("".join(chunk).encode("utf-8"))
            sheet.write(b"</sheetData></worksheet>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as sst:
            sst.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">'.encode("utf-8"))
            for start in range(0, len(strings), 10000):
                sst.write("".join(f"<si><t>{esc(s)}</t></si>" for s in strings[start:start + 10000]).encode("utf-8"))
            sst.write(b"</sst>")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--xlsx-rows", type=int, help="write one benchmark workbook of this many rows to --out")
    args = parser.parse_args()
    if args.xlsx_rows is not None:
        big_xlsx(args.xlsx_rows, args.out)
        return
    os.makedirs(args.out, exist_ok=True)
    for case, data, expected in make_cases():
        with open(os.path.join(args.out, case.name), "wb") as f:
            f.write(data)
        with open(os.path.join(args.out, case.name + ".expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, ensure_ascii=False, indent=2, sort_keys=True)
            f.write("\n")
    print(f"{len(make_cases())} files in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
