//! Deterministic ids: trace and span ids hashed from what the store holds (a session id, an event
//! row id, a tool_use_id, a run id), so that a batch sent again after a crash carries the same
//! ids and a collector can recognise it; and the salted hashes that stand in for ids and paths
//! when the user asks for them. Must not do IO.

use ring::digest::{SHA256, digest};

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    // Parts are joined with a byte no id or path holds, so ("a", "bc") and ("ab", "c") differ.
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        buf.extend_from_slice(p);
        buf.push(0);
    }
    let d = digest(&SHA256, &buf);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A trace id: 16 bytes, never all zero (OTLP's "invalid").
pub type TraceId = [u8; 16];
/// A span id: 8 bytes, never all zero.
pub type SpanId = [u8; 8];

pub fn trace_id(parts: &[&[u8]]) -> TraceId {
    let h = sha(parts);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

pub fn span_id(parts: &[&[u8]]) -> SpanId {
    let h = sha(parts);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[16..24]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

/// The trace of a session: every turn, tool call and run it asked for.
pub fn session_trace(session_id: &str) -> TraceId {
    trace_id(&[b"session", session_id.as_bytes()])
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A salted hash that stands in for an id or a path (`hash_ids`, `hash_paths`): 32 hex digits.
/// Pseudonymous, not anonymous: whoever knows the salt can test a guess.
pub fn pseudonym(salt: &str, value: &str) -> String {
    hex(&sha(&[b"pseudonym", salt.as_bytes(), value.as_bytes()])[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(session_trace("s1"), session_trace("s1"));
        assert_ne!(session_trace("s1"), session_trace("s2"));
        assert_ne!(span_id(&[b"a", b"bc"]), span_id(&[b"ab", b"c"]));
        assert_eq!(hex(&[0, 0xab, 0x0f]), "00ab0f");
        assert_eq!(pseudonym("x", "/p").len(), 32);
        assert_ne!(pseudonym("x", "/p"), pseudonym("y", "/p"));
    }
}
