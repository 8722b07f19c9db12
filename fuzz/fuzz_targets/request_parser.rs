//! Any bytes as the body of `POST /api/v1/restore`, `/restore`, `/stats` and `/permissions`:
//! the parsers never panic, and an accepted restore body has a canonical project id, a bounded
//! user and a path whose mapping is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::request::{
    PermissionsRequest, RestoreRequest, StatsRequest, MAX_ID_DIGITS, MAX_USER_BYTES,
};

fuzz_target!(|body: &[u8]| {
    if let Ok(request) = RestoreRequest::from_json(body) {
        let id = &request.project_id;
        assert!(!id.is_empty() && id.len() <= MAX_ID_DIGITS, "{id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id:?}");
        assert!(id == "0" || !id.starts_with('0'), "{id:?}");
        assert!(!request.user.is_empty() && request.user.len() <= MAX_USER_BYTES);
        let mapping = request.path_mapping().expect("an accepted path maps");
        assert!(mapping.prefix.ends_with('/') && !mapping.prefix.contains("//"));
    }
    if let Ok(stats) = StatsRequest::from_json(body) {
        stats.path_mapping().expect("an accepted path maps");
    }
    let _ = PermissionsRequest::from_json(body);
});
