//! Go's `time.Duration`, read and written exactly as Go does (`time.ParseDuration` and
//! `Duration.String` in Go's `time/format.go`): one parser for every duration the project reads
//! (config entries, the CA configuration, command-line intervals).

/// Nanoseconds of a Go duration string (`time.ParseDuration`), exactly: `1.5s`, `1h30m`,
/// `250ms`, `0`. Negative durations have no use in a config entry and are refused.
pub fn parse_go(s: &str) -> Option<u128> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t == "0" {
        return Some(0);
    }
    if t.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut part: u128 = 0;
        let mut denom: u128 = 1;
        for c in fraction.chars().take(18) {
            part = part * 10 + u128::from(c.to_digit(10)?);
            denom *= 10;
        }
        total = total.checked_add(whole.checked_mul(scale)?)?;
        total += part * scale / denom;
        rest = next;
    }
    Some(total)
}

/// A duration as Go's `time.Duration.String()` writes it (`1h0m0s`, `1m30s`, `1.5s`, `10ms`).
pub fn to_go(nanos: u128) -> String {
    fn frac(whole: u128, part: u128, digits: u32) -> String {
        if part == 0 {
            return whole.to_string();
        }
        let f = format!("{part:0width$}", width = digits as usize);
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    const US: u128 = 1_000;
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000_000_000;
    match nanos {
        0 => "0s".to_owned(),
        n if n < US => format!("{n}ns"),
        n if n < MS => format!("{}µs", frac(n / US, n % US, 3)),
        n if n < S => format!("{}ms", frac(n / MS, n % MS, 6)),
        n => {
            let (h, m) = (n / (3600 * S), (n / (60 * S)) % 60);
            let secs = frac((n / S) % 60, n % S, 9);
            match (h, m) {
                (0, 0) => format!("{secs}s"),
                (0, m) => format!("{m}m{secs}s"),
                (h, m) => format!("{h}h{m}m{secs}s"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_are_spelled_as_go_spells_them() {
        for (text, go) in [
            ("0", "0s"),
            ("1h", "1h0m0s"),
            ("90s", "1m30s"),
            ("1.5s", "1.5s"),
            ("250ms", "250ms"),
            ("1h30m", "1h30m0s"),
            ("2us", "2µs"),
            ("15ns", "15ns"),
        ] {
            assert_eq!(to_go(parse_go(text).unwrap()), go, "{text}");
        }
        assert_eq!(parse_go("10x"), None);
        assert_eq!(parse_go("-1s"), None);
    }

    #[test]
    fn large_and_fractional_values_are_exact() {
        // Go: 1.000000001s is exactly 1_000_000_001ns; floating point would round it.
        assert_eq!(parse_go("1.000000001s"), Some(1_000_000_001));
        assert_eq!(parse_go("2562047h"), Some(2_562_047 * 3_600_000_000_000));
    }
}
