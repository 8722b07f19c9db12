//! Any string as a request path: the mapping never panics, and an accepted prefix is never
//! empty, never starts with `/`, always ends with `/`, holds no `//`, `.` or `..` segment and
//! no control character, and maps the same way again when fed back as a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::path::PathMapping;

fuzz_target!(|path: &str| {
    let Ok(mapping) = PathMapping::from_request_path(path) else {
        return;
    };
    let prefix = &mapping.prefix;
    assert!(prefix.len() > 1, "{path:?} → {prefix:?}");
    assert!(!prefix.starts_with('/') && prefix.ends_with('/'), "{prefix:?}");
    assert!(!prefix.contains("//"), "{prefix:?}");
    assert!(!prefix.chars().any(char::is_control), "{prefix:?}");
    for segment in prefix.trim_end_matches('/').split('/') {
        assert!(segment != "." && segment != ".." && !segment.is_empty(), "{prefix:?}");
    }
    if let Some(base) = &mapping.local_base {
        assert!(base.ends_with("Assets/"), "{base:?}");
        let key = format!("{prefix}clip.mov");
        assert_eq!(mapping.local_path(&key), Some(format!("{base}{key}")));
    }
    // The prefix without Assets in it maps to itself.
    if !prefix.split('/').any(|s| s == "Assets") {
        let again = PathMapping::from_request_path(prefix).expect("a prefix is a valid path");
        assert_eq!(&again.prefix, prefix);
    }
});
