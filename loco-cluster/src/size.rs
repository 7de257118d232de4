//! Byte sizes as people write them: `4096`, `64KiB`, `512 MiB`, `1G`, `2GB`, `0x1000`.

use std::fmt;

/// Parses a size. Binary suffixes (K, KiB, M, MiB, G, GiB, T, TiB) are powers of
/// 1024; decimal ones (KB, MB, GB, TB) are powers of 1000; `B` or none is bytes.
/// Underscores between digits are allowed, as in TOML integers.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16)
            .map_err(|_| format!("{text:?} is not a hexadecimal number"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("{text:?} does not start with a number"));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: the number is too large"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            ))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

/// A byte count that prints in the largest binary unit that keeps it exact
/// (`1 GiB`, `1536 KiB`, `100 B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
        for (name, shift) in UNITS {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{} {name}", self.0 >> shift);
            }
        }
        write!(f, "{} B", self.0)
    }
}
