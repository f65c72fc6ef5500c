"""The reference of the reader benchmark (infra/bench.sh): a plain Python
`csv` reader of the generated Windows-1251 export, with the names NFKC'd and
the balances read as kopecks, as the performance issue describes it.

    python3 csv_baseline.py FILE ROWS
"""

import csv
import sys
import time
import unicodedata
from decimal import Decimal


def main() -> None:
    path, rows = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    read = 0
    total = 0
    with open(path, encoding="cp1251", newline="") as file:
        reader = csv.reader(file, delimiter=";")
        next(reader)
        for row in reader:
            account = row[0].strip()
            name = unicodedata.normalize("NFKC", row[1]).strip()
            balance = unicodedata.normalize("NFKC", row[4]).replace(" ", "").replace(",", ".")
            if account.isdigit() and name:
                total += int(Decimal(balance) * 100)
                read += 1
    seconds = time.perf_counter() - started
    print(
        f"reader python csv {rows:>9} rows: {seconds:>8.2f} s, {rows / seconds:>9.0f} rows/s"
        f" (plain csv module, NFKC names and balances; {read} read)"
    )


if __name__ == "__main__":
    main()
