//! What the front reads from a call's headers: its deadline and its credentials.

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

/// The call's deadline from `grpc-timeout` (at most 8 digits and a unit, per the gRPC HTTP/2 protocol).
pub fn deadline(metadata: &MetadataMap) -> Option<Instant> {
    deadline_of(metadata.get("grpc-timeout")?.as_bytes())
}

/// The deadline of a `grpc-timeout` header's value.
pub fn deadline_of(value: &[u8]) -> Option<Instant> {
    let value = std::str::from_utf8(value).ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    // A millisecond early: tonic's own timeout, armed from the same header a moment before, answers CANCELLED; the
    // front answers first, with the DEADLINE_EXCEEDED every gRPC server gives.
    Instant::now().checked_add(timeout.saturating_sub(Duration::from_millis(1)))
}

/// The `authorization` header as sent (Python's authorizer decides what it is worth).
pub fn authorization(metadata: &MetadataMap) -> Option<String> {
    metadata.get("authorization").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
