//! A cheap look at a server frame without building a `serde_json::Value`:
//! the receivers of `direct` and `fanout` see hundreds of thousands of
//! frames a second, and parsing each one made the generator, not the
//! server, the limit.
//!
//! [`scan`] walks the frame once, skipping over strings (so a `"type":"msg"`
//! quoted inside another string does not count) and over nested objects
//! and arrays (so a `msg` inside a history `ok` does not count either),
//! and returns the top-level `type` and `body` strings wherever they stand
//! in the object: serde does not promise a field order. The strings come
//! back raw, escapes and all; the load generator's bodies are decimal
//! digits (see [`digits`]), which have none.

/// The top-level `type` and `body` of a frame, as raw (still escaped)
/// bytes between the quotes; `None` where the frame has no such string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan<'a> {
    /// The value of the top-level `type` key.
    pub ty: Option<&'a [u8]>,
    /// The value of the top-level `body` key.
    pub body: Option<&'a [u8]>,
}

/// Scans one JSON object (a TCP line or a WebSocket text message) for its
/// top-level `type` and `body` strings. Not a validator: on malformed
/// input it returns whatever it found before giving up.
pub fn scan(frame: &[u8]) -> Scan<'_> {
    let mut found = Scan::default();
    let start = frame.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|s| frame[s]) != Some(b'{') {
        return found;
    }
    let mut depth = 0usize;
    // At the top level: the next string is a key (after `{` or `,`).
    let mut want_key = false;
    let mut key: &[u8] = b"";
    let mut i = start.unwrap_or(0);
    while i < frame.len() {
        match frame[i] {
            b'"' => {
                let Some(end) = string_end(frame, i + 1) else {
                    return found;
                };
                let s = &frame[i + 1..end];
                if depth == 1 {
                    if want_key {
                        key = s;
                        want_key = false;
                    } else if key == b"type" {
                        found.ty = Some(s);
                    } else if key == b"body" {
                        found.body = Some(s);
                    }
                }
                i = end;
            }
            b'{' | b'[' => {
                depth += 1;
                want_key = depth == 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return found;
                }
            }
            b',' if depth == 1 => want_key = true,
            _ => {}
        }
        i += 1;
    }
    found
}

/// The index of the quote closing a string whose contents start at `from`.
fn string_end(frame: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let k = from
            + frame
                .get(from..)?
                .iter()
                .position(|&b| b == b'"' || b == b'\\')?;
        if frame[k] == b'"' {
            return Some(k);
        }
        // Skip the escaped byte (`\"`, `\\`, or the `u` of `\uXXXX`).
        from = k + 2;
    }
}

/// The `body` of a top-level `msg` frame, raw; `None` for any other frame.
pub fn msg_body(frame: &[u8]) -> Option<&[u8]> {
    let s = scan(frame);
    if s.ty == Some(b"msg".as_slice()) {
        s.body
    } else {
        None
    }
}

/// Whether `frame` is a top-level `error` frame.
pub fn is_error(frame: &[u8]) -> bool {
    scan(frame).ty == Some(b"error".as_slice())
}

/// `s` as a decimal number: only ASCII digits, at least one, no overflow.
pub fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_msg_frame_in_the_servers_field_order() {
        let f = br#"{"type":"msg","conv":"room:lgabroom","seq":412,"from":"lgab3","body":"1234567","ts":1732500000000}"#;
        assert_eq!(msg_body(f), Some(b"1234567".as_slice()));
        let s = scan(f);
        assert_eq!(s.ty, Some(b"msg".as_slice()));
    }

    #[test]
    fn body_before_type_and_other_fields_around_it() {
        let f = br#"{"conv":"dm:a:b","body":"42","seq":5,"from":"a","type":"msg","ts":1,"client_id":"c-1"}"#;
        assert_eq!(msg_body(f), Some(b"42".as_slice()));
        let f = br#"{"from":"a","extra":{"body":"9","type":"x"},"body":"7","type":"msg"}"#;
        assert_eq!(msg_body(f), Some(b"7".as_slice()));
    }

    #[test]
    fn whitespace_and_a_trailing_newline() {
        let f = b"  { \"type\" : \"msg\" , \"body\" : \"99\" }\n";
        assert_eq!(msg_body(f), Some(b"99".as_slice()));
        assert_eq!(
            msg_body(b"{\"type\":\"msg\",\"body\":\"5\"}\r\n"),
            Some(b"5".as_slice())
        );
    }

    #[test]
    fn frames_that_are_not_msg() {
        let ok = br#"{"type":"ok","id":3,"seq":7,"conv":"dm:a:b"}"#;
        assert_eq!(msg_body(ok), None);
        assert_eq!(scan(ok).ty, Some(b"ok".as_slice()));
        let err = br#"{"type":"error","id":4,"code":"rate_limited","message":"slow down"}"#;
        assert!(is_error(err));
        assert!(!is_error(ok));
        let presence = br#"{"type":"presence","user":"lgab1","status":"online"}"#;
        assert_eq!(msg_body(presence), None);
    }

    #[test]
    fn a_msg_inside_a_string_or_a_nested_object_does_not_count() {
        let quoted =
            br#"{"type":"room.topic","topic":"say \"type\":\"msg\",\"body\":\"1\"","body":"2"}"#;
        assert_eq!(msg_body(quoted), None);
        let nested = br#"{"type":"ok","messages":[{"type":"msg","conv":"dm:a:b","seq":70,"from":"b","body":"123","ts":1}],"more":true}"#;
        assert_eq!(msg_body(nested), None);
        let s = scan(nested);
        assert_eq!(s.body, None);
        let in_key = br#"{"\"type\"":"msg","note":"{\"type\":\"msg\"}"}"#;
        assert_eq!(scan(in_key).ty, None);
    }

    #[test]
    fn escaped_bodies_come_back_raw() {
        let f = br#"{"type":"msg","body":"a\"b\\","seq":1}"#;
        assert_eq!(msg_body(f), Some(br#"a\"b\\"#.as_slice()));
        assert_eq!(digits(br#"a\"b\\"#), None);
    }

    #[test]
    fn malformed_frames_do_not_panic() {
        for f in [
            b"".as_slice(),
            b"[\"type\",\"msg\"]",
            b"{\"type\":\"msg",
            b"{\"type\":\"msg\",\"body\":\"12",
            b"{\"type\":\"m\\",
            b"}}}",
            b"\"type\":\"msg\"",
        ] {
            assert_eq!(msg_body(f), None, "{:?}", String::from_utf8_lossy(f));
        }
    }

    #[test]
    fn digits_parse_decimal_only() {
        assert_eq!(digits(b"0"), Some(0));
        assert_eq!(digits(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(digits(b"18446744073709551616"), None);
        assert_eq!(digits(b""), None);
        assert_eq!(digits(b"12a"), None);
        assert_eq!(digits(b"-1"), None);
    }
}
