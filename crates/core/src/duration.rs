//! Session durations as users write them (`"1h"`, `"45m"`, `"900s"`, `3600`).

/// Parses `"1h"`, `"45m"`, `"900s"`, `"1h30m"` or a bare number of seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut saw_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "unexpected `{c}` in duration `{s}` (use e.g. `1h`, `45m`, `900s`)"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("a number must come before `{c}` in duration `{s}`"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{s}` is too large"))?;
        num.clear();
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit {
        return Err(format!(
            "duration `{s}` needs a unit after every number (`h`, `m`, `s`)"
        ));
    }
    Ok(total)
}

/// `3600` -> `"1h"`, `5400` -> `"1h30m"`, `59` -> `"59s"`: for messages.
pub fn format_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(parse_duration_secs("3600"), Ok(3600));
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        assert_eq!(parse_duration_secs("45m"), Ok(2700));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert_eq!(parse_duration_secs("900s"), Ok(900));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(parse_duration_secs("").is_err());
        assert!(
            parse_duration_secs("1x")
                .unwrap_err()
                .contains("unexpected `x`")
        );
        assert!(
            parse_duration_secs("1h30")
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(parse_duration_secs("h").is_err());
        assert!(parse_duration_secs("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(format_secs(3600), "1h");
        assert_eq!(format_secs(5400), "1h30m");
        assert_eq!(format_secs(0), "0s");
        assert_eq!(format_secs(61), "1m1s");
    }
}
