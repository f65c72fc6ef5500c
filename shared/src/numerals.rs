//! Numbers of units as a resident reads them: the noun agrees with the
//! numeral («1 минуту», «3 секунды», «5 минут», «21 минуту»). Every place
//! that prints a number of units goes through [`count`].

/// A unit a number of which is printed to residents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

impl Unit {
    /// The forms after a numeral ending in 1, in 2–4, and the rest, in the
    /// accusative the texts need («через 1 минуту», «действует 24 часа»,
    /// «займёт примерно 3 секунды»).
    fn forms(self) -> [&'static str; 3] {
        match self {
            Unit::Second => ["секунду", "секунды", "секунд"],
            Unit::Minute => ["минуту", "минуты", "минут"],
            Unit::Hour => ["час", "часа", "часов"],
            Unit::Day => ["день", "дня", "дней"],
        }
    }
}

/// `n` and the unit's noun agreeing with it: «1 минуту», «3 секунды»,
/// «11 часов», «21 минуту».
pub fn count(n: u64, unit: Unit) -> String {
    let [one, few, many] = unit.forms();
    let noun = match (n % 10, n % 100) {
        (_, 11..=14) => many,
        (1, _) => one,
        (2..=4, _) => few,
        _ => many,
    };
    format!("{n} {noun}")
}

/// "через …": a wait of `seconds` as a resident reads it, rounded up to
/// the unit that fits (seconds under a minute, minutes under two hours,
/// hours beyond), never zero.
pub fn wait(seconds: u64) -> String {
    let seconds = seconds.max(1);
    if seconds < 60 {
        return count(seconds, Unit::Second);
    }
    let minutes = seconds.div_ceil(60);
    if minutes < 120 {
        return count(minutes, Unit::Minute);
    }
    count(minutes.div_ceil(60), Unit::Hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_rounded_up_to_the_unit_that_fits() {
        let table = [
            (0, "1 секунду"),
            (1, "1 секунду"),
            (59, "59 секунд"),
            (60, "1 минуту"),
            (61, "2 минуты"),
            (900, "15 минут"),
            (3600, "60 минут"),
            (7140, "119 минут"),
            (7199, "2 часа"),
            (7200, "2 часа"),
            (7201, "3 часа"),
            (86_000, "24 часа"),
            (86_400, "24 часа"),
        ];
        for (seconds, expected) in table {
            assert_eq!(wait(seconds), expected, "{seconds} s");
        }
    }

    #[test]
    fn the_noun_agrees_with_the_numeral() {
        let table = [
            (0, Unit::Second, "0 секунд"),
            (1, Unit::Second, "1 секунду"),
            (3, Unit::Second, "3 секунды"),
            (5, Unit::Minute, "5 минут"),
            (1, Unit::Minute, "1 минуту"),
            (21, Unit::Minute, "21 минуту"),
            (22, Unit::Minute, "22 минуты"),
            (11, Unit::Minute, "11 минут"),
            (12, Unit::Hour, "12 часов"),
            (14, Unit::Hour, "14 часов"),
            (24, Unit::Hour, "24 часа"),
            (101, Unit::Day, "101 день"),
            (111, Unit::Day, "111 дней"),
            (112, Unit::Day, "112 дней"),
            (1002, Unit::Day, "1002 дня"),
            (15, Unit::Minute, "15 минут"),
            (30, Unit::Second, "30 секунд"),
        ];
        for (n, unit, expected) in table {
            assert_eq!(count(n, unit), expected);
        }
    }
}
