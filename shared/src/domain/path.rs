//! The path mapping of DESIGN §3: an on-premises project path becomes the S3 prefix to restore
//! and the local folder the files are copied back under.
//!
//! Rules (seed semantics with its bugs fixed):
//! - the path is split into `/`-separated segments; empty segments are dropped, so repeated,
//!   leading and trailing slashes never produce `//` in a prefix;
//! - the FIRST segment named exactly `Assets` (case-sensitive, like the seed) splits the path:
//!   everything after it is the prefix, everything up to and including it is the local base
//!   (`/mnt/p/Assets/a/Assets/b` → prefix `a/Assets/b/`, local base `/mnt/p/Assets/`);
//! - without an `Assets` segment the whole path is the prefix and there is no local base;
//! - the prefix always ends with `/` so `proj/12` never matches `proj/123`;
//! - rejected: empty or whitespace-only paths, the root, `Assets` with nothing after it (each
//!   would list a whole bucket or every project), a prefix of only blank folder names (a typo),
//!   `.` and `..` segments, control characters (NUL included), paths over [`MAX_PATH_BYTES`];
//! - spaces and unicode are kept verbatim (no trimming, no Unicode normalization): S3 keys are
//!   byte strings and the on-premises names must match them exactly.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Longest request path accepted, in bytes (S3 keys are at most 1024 bytes).
pub const MAX_PATH_BYTES: usize = 1024;

/// The folder segment that separates the local base from the S3 prefix.
const ASSETS: &str = "Assets";

/// What a request path maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathMapping {
    /// S3 prefix to list and restore; never empty, never starts with `/`, always ends with `/`.
    pub prefix: String,
    /// Local assets root (`<base>/Assets/`) the copy back writes under, when the path had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_base: Option<String>,
}

impl PathMapping {
    /// Maps a request path; a rejected path is `Error::Validation` with code `invalid_path`
    /// and a message saying why.
    pub fn from_request_path(path: &str) -> Result<PathMapping> {
        let invalid = |why: &str| Error::validation("invalid_path", format!("path {why}"));
        if path.len() > MAX_PATH_BYTES {
            return Err(invalid(&format!(
                "is longer than {MAX_PATH_BYTES} bytes ({} bytes)",
                path.len()
            )));
        }
        if path.chars().any(char::is_control) {
            return Err(invalid("contains a control character"));
        }
        if path.trim().is_empty() {
            return Err(invalid("is empty"));
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(invalid(
                "is the root, which would restore a whole bucket; name a project folder",
            ));
        }
        if let Some(bad) = segments.iter().find(|s| **s == "." || **s == "..") {
            return Err(invalid(&format!("must not contain a {bad:?} segment")));
        }
        let (base, rest) = match segments.iter().position(|s| *s == ASSETS) {
            Some(i) => (Some(&segments[..=i]), &segments[i + 1..]),
            None => (None, &segments[..]),
        };
        if rest.is_empty() {
            return Err(invalid(
                "ends at its Assets folder, which would restore every project; name a folder below it",
            ));
        }
        if rest.iter().all(|s| s.trim().is_empty()) {
            return Err(invalid("names only blank folders"));
        }
        let local_base = base.map(|base| {
            let lead = if path.starts_with('/') { "/" } else { "" };
            format!("{lead}{}/", base.join("/"))
        });
        Ok(PathMapping {
            prefix: format!("{}/", rest.join("/")),
            local_base,
        })
    }

    /// Where an object key lands on premises: `local_base` + key (the prefix is the path
    /// below `Assets/`, so the key is too). `None` without a local base or for a key outside
    /// the prefix.
    pub fn local_path(&self, key: &str) -> Option<String> {
        let base = self.local_base.as_ref()?;
        key.starts_with(&self.prefix)
            .then(|| format!("{base}{key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(path: &str) -> (String, Option<String>) {
        let m = PathMapping::from_request_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        (m.prefix, m.local_base)
    }

    fn reject(path: &str) -> String {
        let err = PathMapping::from_request_path(path).expect_err(path);
        assert_eq!(err.code(), "invalid_path", "{path:?}");
        err.to_string()
    }

    #[test]
    fn base_assets_rest_maps_to_rest_prefix_and_local_base() {
        assert_eq!(
            map("/Volumes/Projects/Acme/Assets/12345/footage"),
            (
                "12345/footage/".into(),
                Some("/Volumes/Projects/Acme/Assets/".into())
            )
        );
        assert_eq!(
            map("/srv/Assets/proj"),
            ("proj/".into(), Some("/srv/Assets/".into()))
        );
        // Relative paths keep their base relative.
        assert_eq!(
            map("media/Assets/proj"),
            ("proj/".into(), Some("media/Assets/".into()))
        );
        assert_eq!(map("Assets/proj"), ("proj/".into(), Some("Assets/".into())));
    }

    #[test]
    fn trailing_slash_makes_no_difference() {
        assert_eq!(map("/srv/Assets/proj/"), map("/srv/Assets/proj"));
        assert_eq!(map("proj/12/"), map("proj/12"));
        assert_eq!(map("proj/12").0, "proj/12/");
    }

    #[test]
    fn prefix_never_matches_a_longer_sibling() {
        let (prefix, _) = map("proj/12");
        assert!(!"proj/123/file.mov".starts_with(&prefix));
        assert!("proj/12/file.mov".starts_with(&prefix));
    }

    #[test]
    fn splits_at_the_first_assets_folder_only() {
        assert_eq!(
            map("/mnt/a/Assets/p1/Assets/b/c"),
            ("p1/Assets/b/c/".into(), Some("/mnt/a/Assets/".into()))
        );
        // Case matters, like in the seed: `assets` is an ordinary folder.
        assert_eq!(map("/mnt/assets/p1"), ("mnt/assets/p1/".into(), None));
        // A folder merely containing the word is not the split point.
        assert_eq!(map("/mnt/MyAssets/p1"), ("mnt/MyAssets/p1/".into(), None));
    }

    #[test]
    fn path_without_assets_is_the_prefix() {
        assert_eq!(map("proj/12"), ("proj/12/".into(), None));
        assert_eq!(map("/proj/12"), ("proj/12/".into(), None));
        assert_eq!(map("single"), ("single/".into(), None));
    }

    #[test]
    fn repeated_slashes_collapse() {
        assert_eq!(
            map("//mnt///p//Assets//a//b//"),
            ("a/b/".into(), Some("/mnt/p/Assets/".into()))
        );
        assert_eq!(map("proj//12"), ("proj/12/".into(), None));
        for path in ["//x//y//", "/a//Assets///b"] {
            let m = PathMapping::from_request_path(path).unwrap();
            assert!(!m.prefix.contains("//"), "{path}");
            assert!(!m.prefix.starts_with('/'), "{path}");
            assert!(!m.local_base.unwrap_or_default().contains("//"), "{path}");
        }
    }

    #[test]
    fn spaces_and_unicode_are_kept_verbatim() {
        assert_eq!(
            map("/Volumes/Média Projets/Assets/Été 2024/Scène 1 "),
            (
                "Été 2024/Scène 1 /".into(),
                Some("/Volumes/Média Projets/Assets/".into())
            )
        );
        assert_eq!(
            map("日本/プロジェクト"),
            ("日本/プロジェクト/".into(), None)
        );
        // Decomposed and composed forms stay distinct (no Unicode normalization).
        assert_ne!(map("Cafe\u{301}").0, map("Caf\u{e9}").0);
    }

    #[test]
    fn empty_and_root_are_rejected() {
        for path in ["", "   ", "/", "//", "///"] {
            let msg = reject(path);
            assert!(msg.starts_with("path "), "{msg}");
        }
        assert!(reject("/").contains("root"));
        assert!(reject("").contains("empty"));
        assert!(reject("/ / /").contains("blank"));
        assert!(reject("/srv/Assets/ /").contains("blank"));
    }

    #[test]
    fn assets_with_nothing_after_is_rejected() {
        for path in [
            "Assets/",
            "Assets",
            "/Assets/",
            "/mnt/p/Assets",
            "/mnt/p/Assets//",
        ] {
            assert!(reject(path).contains("Assets"), "{path}");
        }
    }

    #[test]
    fn dot_segments_are_rejected() {
        for path in [
            "..",
            "../etc",
            "/mnt/Assets/../../x",
            "/mnt/Assets/p/..",
            "proj/./12",
            ".",
        ] {
            assert!(reject(path).contains("segment"), "{path}");
        }
        // Dots inside names are fine.
        assert_eq!(
            map("proj/v1..2/.hidden"),
            ("proj/v1..2/.hidden/".into(), None)
        );
    }

    #[test]
    fn control_characters_and_overlong_paths_are_rejected() {
        assert!(reject("proj/\0x").contains("control"));
        assert!(reject("proj/\nx").contains("control"));
        assert!(reject("proj/\u{7f}").contains("control"));
        let long = "a/".repeat(MAX_PATH_BYTES / 2 + 1);
        assert!(reject(&long).contains("longer than"));
        let ok = "a".repeat(MAX_PATH_BYTES);
        assert!(PathMapping::from_request_path(&ok).is_ok());
    }

    /// Every combination of awkward segments either is refused as `invalid_path` or yields a
    /// prefix that can't list a whole bucket and has no `//`, `.` or `..`.
    #[test]
    fn invariants_hold_for_all_small_paths() {
        let parts = ["", "a", "Assets", " ", "é", ".", "..", "b c"];
        let mut checked = 0;
        for n in 1..=4u32 {
            for mut i in 0..parts.len().pow(n) {
                let mut segs = Vec::new();
                for _ in 0..n {
                    segs.push(parts[i % parts.len()]);
                    i /= parts.len();
                }
                for lead in ["", "/"] {
                    let path = format!("{lead}{}", segs.join("/"));
                    checked += 1;
                    match PathMapping::from_request_path(&path) {
                        Err(e) => assert_eq!(e.code(), "invalid_path", "{path:?}"),
                        Ok(m) => {
                            let p = &m.prefix;
                            assert!(p.ends_with('/') && p.len() > 1, "{path:?} -> {p:?}");
                            assert!(!p.starts_with('/') && !p.contains("//"), "{path:?}");
                            assert!(p.split('/').all(|s| s != "." && s != ".."), "{path:?}");
                            assert!(p.trim_matches('/').chars().any(|c| c != ' '), "{path:?}");
                            if let Some(base) = &m.local_base {
                                assert!(base.ends_with("Assets/") && !base.contains("//"));
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 9000);
    }

    #[test]
    fn local_path_joins_base_and_key() {
        let m = PathMapping::from_request_path("/srv/Assets/proj").unwrap();
        assert_eq!(
            m.local_path("proj/a b/c.mov").as_deref(),
            Some("/srv/Assets/proj/a b/c.mov")
        );
        assert_eq!(m.local_path("other/c.mov"), None);
        let m = PathMapping::from_request_path("proj").unwrap();
        assert_eq!(m.local_path("proj/c.mov"), None);
    }
}
