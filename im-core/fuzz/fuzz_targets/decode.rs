//! Arbitrary bytes through `im_core::protocol::decode`, the one function
//! every transport hands a client frame to: it must never panic, must
//! refuse what is not UTF-8 JSON without reading an `id` from it, must
//! only ever accept an `id` the protocol allows, and the `bad_request`
//! reply built from its refusal must be valid JSON carrying that `id`.

#![no_main]

use im_core::protocol::{decode, RequestId, MAX_ID_CHARS};
use im_core::{ErrorCode, ProtoError, ServerFrame};
use libfuzzer_sys::fuzz_target;

fn check_id(id: &Option<RequestId>) {
    if let Some(RequestId::Str(s)) = id {
        assert!(s.chars().count() <= MAX_ID_CHARS, "id too long: {s:?}");
    }
}

/// The id as it must appear in a reply.
fn id_json(id: &Option<RequestId>) -> serde_json::Value {
    match id {
        None => serde_json::Value::Null,
        Some(RequestId::Int(i)) => serde_json::json!(i),
        Some(RequestId::Str(s)) => serde_json::json!(s),
    }
}

fuzz_target!(|data: &[u8]| {
    let utf8 = std::str::from_utf8(data).is_ok();
    match decode(data) {
        Ok(req) => {
            assert!(utf8, "decoded bytes that are not UTF-8");
            check_id(&req.id);
            let _ = req.frame.allowed_before_login();
        }
        Err(bad) => {
            assert!(!bad.message.is_empty(), "refusal without a message");
            check_id(&bad.id);
            if !utf8 {
                assert!(bad.id.is_none(), "read an id from bytes that are not UTF-8");
            }
            let reply = ServerFrame::error(
                bad.id.clone(),
                ProtoError::new(ErrorCode::BadRequest, bad.message.clone()),
            )
            .encode();
            let v: serde_json::Value =
                serde_json::from_slice(reply.as_bytes()).expect("reply is not JSON");
            assert_eq!(v["type"], "error");
            assert_eq!(v["code"], "bad_request");
            assert_eq!(v.get("id").cloned().unwrap_or_default(), id_json(&bad.id));
        }
    }
});
