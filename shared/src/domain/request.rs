//! Parsing and validation of the API's request bodies (DESIGN §3), from raw JSON bytes.
//!
//! Parsing goes through `serde_json::Value` rather than a derived struct so every problem is a
//! precise `Error::Validation` naming the field: `invalid_json` (not JSON, not an object, too
//! big), `missing_field` (absent or `null`), `invalid_field` (wrong JSON type or bad value),
//! `unknown_tier`, and `invalid_path` from the path mapping. Fields are checked in the order
//! of the API contract (id, user, path, retrievalType) and the first problem is reported.
//! Unknown extra fields are ignored, as the seed's frontend sends some.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::path::PathMapping;
use super::storage::RetrievalTier;
use crate::{Error, Result};

/// Largest request body accepted; real bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most digits a project id may have (a `u64` has at most 20).
pub const MAX_ID_DIGITS: usize = 20;
/// Longest user address accepted (the SMTP limit of a forward path).
pub const MAX_USER_BYTES: usize = 254;

/// `POST /api/v1/restore` and `POST /restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// Project id in canonical decimal form (no sign, no leading zeros).
    pub project_id: String,
    /// Requesting user's address, trimmed.
    pub user: String,
    /// On-premises or S3 path as sent; already checked by [`PathMapping`].
    pub path: String,
    pub tier: RetrievalTier,
}

impl RestoreRequest {
    /// Parses and validates a restore body: `{"id", "user", "path", "retrievalType"}`.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let obj = parse_object(body)?;
        Ok(RestoreRequest {
            project_id: project_id(&obj)?,
            user: user(&obj)?,
            path: path(&obj)?,
            tier: tier(&obj)?,
        })
    }

    /// The S3 prefix and local base of the request's path (validated by `from_json`).
    pub fn path_mapping(&self) -> Result<PathMapping> {
        PathMapping::from_request_path(&self.path)
    }
}

/// `POST /stats`: `{"id", "path"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRequest {
    pub project_id: String,
    pub path: String,
}

impl StatsRequest {
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let obj = parse_object(body)?;
        Ok(StatsRequest {
            project_id: project_id(&obj)?,
            path: path(&obj)?,
        })
    }

    pub fn path_mapping(&self) -> Result<PathMapping> {
        PathMapping::from_request_path(&self.path)
    }
}

/// `POST /permissions`: `{"user"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsRequest {
    /// The user as sent, trimmed. Only compared with `ALLOWED_USERS`, so it need not be an
    /// address (the seed's frontend may send a login name); see [`PermissionsRequest::from_json`].
    pub user: String,
}

impl PermissionsRequest {
    /// Parses `{"user"}`. Laxer than a restore's `user`: any non-empty, bounded string without
    /// control characters, since nothing is mailed to it; the answer is just "not allowed"
    /// when it matches no entry.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let obj = parse_object(body)?;
        Ok(PermissionsRequest {
            user: user_name(&obj)?.to_string(),
        })
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::validation(
            "invalid_json",
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::validation("invalid_json", "request body is empty"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(other) => Err(Error::validation(
            "invalid_json",
            format!(
                "request body must be a JSON object, got {}",
                type_name(&other)
            ),
        )),
        Err(e) => Err(Error::validation(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The field's value; absent and `null` are both "missing".
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(Error::validation(
            "missing_field",
            format!("field `{name}` is required"),
        )),
        Some(v) => Ok(v),
    }
}

fn invalid(name: &str, why: impl std::fmt::Display) -> Error {
    Error::validation("invalid_field", format!("field `{name}` {why}"))
}

fn string_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    match field(obj, name)? {
        Value::String(s) => Ok(s),
        other => Err(invalid(
            name,
            format_args!("must be a string, got {}", type_name(other)),
        )),
    }
}

/// `id`: a positive integer, as a JSON number or a string of digits (the seed's frontend sends
/// both). Bounded to `u64` so a huge id is a 400, never an overflow.
fn project_id(obj: &Map<String, Value>) -> Result<String> {
    const NAME: &str = "id";
    const WANT: &str = "must be a positive integer (JSON number or numeric string)";
    let n = match field(obj, NAME)? {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(n), _) => n,
            (None, Some(f)) if f >= u64::MAX as f64 => return Err(invalid(NAME, "is too large")),
            _ => return Err(invalid(NAME, format_args!("{WANT}, got {n}"))),
        },
        Value::String(s) => {
            let digits = s.trim();
            if digits.is_empty() {
                return Err(invalid(NAME, format_args!("{WANT}, got an empty string")));
            }
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(NAME, format_args!("{WANT}, got {:?}", truncate(s))));
            }
            let significant = digits.trim_start_matches('0');
            if significant.len() > MAX_ID_DIGITS {
                return Err(invalid(NAME, "is too large"));
            }
            if significant.is_empty() {
                0
            } else {
                significant
                    .parse::<u64>()
                    .map_err(|_| invalid(NAME, "is too large"))?
            }
        }
        other => {
            return Err(invalid(
                NAME,
                format_args!("{WANT}, got {}", type_name(other)),
            ))
        }
    };
    if n == 0 {
        return Err(invalid(NAME, format_args!("{WANT}, got 0")));
    }
    Ok(n.to_string())
}

/// `user`: an address like `name@domain`, trimmed; no whitespace or control characters inside,
/// one `@` with something on both sides. Deliberately not a full RFC 5322 check: the mailer
/// is the judge of deliverability, this only keeps junk out of logs, mails and permissions.
fn user(obj: &Map<String, Value>) -> Result<String> {
    const NAME: &str = "user";
    let user = user_name(obj)?;
    if user.chars().any(char::is_whitespace) {
        return Err(invalid(NAME, "must not contain whitespace"));
    }
    match user.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(user.to_string())
        }
        _ => Err(invalid(
            NAME,
            format_args!("must be an email address, got {:?}", truncate(user)),
        )),
    }
}

/// `user` as an identifier: trimmed, non-empty, at most [`MAX_USER_BYTES`], no control
/// characters.
fn user_name(obj: &Map<String, Value>) -> Result<&str> {
    const NAME: &str = "user";
    let user = string_field(obj, NAME)?.trim();
    if user.is_empty() {
        return Err(invalid(NAME, "must not be empty"));
    }
    if user.len() > MAX_USER_BYTES {
        return Err(invalid(
            NAME,
            format_args!("is longer than {MAX_USER_BYTES} bytes"),
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(invalid(NAME, "must not contain control characters"));
    }
    Ok(user)
}

/// `path`: a non-empty string of at most [`super::path::MAX_PATH_BYTES`] without control
/// characters, that maps to a valid prefix (see [`PathMapping`]). Kept verbatim.
/// Path problems are reported by the mapping with code `invalid_path` (messages start with
/// "path ...").
fn path(obj: &Map<String, Value>) -> Result<String> {
    let path = string_field(obj, "path")?;
    PathMapping::from_request_path(path)?;
    Ok(path.to_string())
}

/// `retrievalType`: Expedited, Standard or Bulk in any case.
fn tier(obj: &Map<String, Value>) -> Result<RetrievalTier> {
    const NAME: &str = "retrievalType";
    let value = string_field(obj, NAME)?;
    RetrievalTier::parse(value).ok_or_else(|| {
        Error::validation(
            "unknown_tier",
            format!(
                "field `{NAME}` must be Expedited, Standard or Bulk, got {:?}",
                truncate(value)
            ),
        )
    })
}

/// Echoing user input in a message: keep it short.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"id": 12345, "user": "ed@example.com", "path": "/mnt/p/Assets/12345", "retrievalType": "Bulk"}"#;

    fn body(id: &str, user: &str, path: &str, tier: &str) -> String {
        format!(r#"{{"id": {id}, "user": {user}, "path": {path}, "retrievalType": {tier}}}"#)
    }

    fn err(body: &str) -> (&'static str, String) {
        let e = RestoreRequest::from_json(body.as_bytes()).expect_err(body);
        assert_eq!(e.http_status(), 400);
        (e.code(), e.to_string())
    }

    #[test]
    fn parses_a_valid_request() {
        let r = RestoreRequest::from_json(OK.as_bytes()).unwrap();
        assert_eq!(
            r,
            RestoreRequest {
                project_id: "12345".into(),
                user: "ed@example.com".into(),
                path: "/mnt/p/Assets/12345".into(),
                tier: RetrievalTier::Bulk,
            }
        );
        let m = r.path_mapping().unwrap();
        assert_eq!(m.prefix, "12345/");
        assert_eq!(m.local_base.as_deref(), Some("/mnt/p/Assets/"));
    }

    #[test]
    fn id_as_number_or_numeric_string() {
        for id in [r#"42"#, r#""42""#, r#"" 42 ""#, r#""00042""#] {
            let b = body(id, r#""a@b.c""#, r#""p""#, r#""Standard""#);
            assert_eq!(
                RestoreRequest::from_json(b.as_bytes()).unwrap().project_id,
                "42",
                "{id}"
            );
        }
        let b = body("18446744073709551615", r#""a@b.c""#, r#""p""#, r#""bulk""#);
        assert_eq!(
            RestoreRequest::from_json(b.as_bytes()).unwrap().project_id,
            u64::MAX.to_string()
        );
    }

    #[test]
    fn bad_ids_are_precise_errors() {
        let cases = [
            ("true", "got a boolean"),
            ("0", "got 0"),
            ("-3", "got -3"),
            ("1.5", "got 1.5"),
            ("1e3", "got 1000.0"),
            (r#""""#, "empty string"),
            (r#""12a""#, "\"12a\""),
            (r#""-12""#, "\"-12\""),
            (r#""0""#, "got 0"),
            ("[1]", "got an array"),
            ("18446744073709551616", "too large"),
            (r#""18446744073709551616""#, "too large"),
        ];
        for (id, want) in cases {
            let (code, msg) = err(&body(id, r#""a@b.c""#, r#""p""#, r#""Bulk""#));
            assert_eq!(code, "invalid_field", "{id}");
            assert!(msg.starts_with("field `id`"), "{id}: {msg}");
            assert!(msg.contains(want), "{id}: {msg}");
        }
        // A huge numeric string is a 400, not a panic or a slow parse.
        let huge = format!("\"{}\"", "9".repeat(10_000));
        let (code, msg) = err(&body(&huge, r#""a@b.c""#, r#""p""#, r#""Bulk""#));
        assert_eq!(
            (code, msg.as_str()),
            ("invalid_field", "field `id` is too large")
        );
        // A number beyond f64 is refused by the JSON parser itself: still a 400.
        let huge = "9".repeat(400);
        let (code, msg) = err(&body(&huge, r#""a@b.c""#, r#""p""#, r#""Bulk""#));
        assert_eq!(code, "invalid_json");
        assert!(msg.contains("out of range"), "{msg}");
    }

    #[test]
    fn missing_fields_are_named() {
        for (name, json) in [
            (
                "id",
                r#"{"user": "a@b.c", "path": "p", "retrievalType": "Bulk"}"#,
            ),
            ("user", r#"{"id": 1, "path": "p", "retrievalType": "Bulk"}"#),
            (
                "path",
                r#"{"id": 1, "user": "a@b.c", "path": null, "retrievalType": "Bulk"}"#,
            ),
            (
                "retrievalType",
                r#"{"id": 1, "user": "a@b.c", "path": "p"}"#,
            ),
        ] {
            let (code, msg) = err(json);
            assert_eq!(code, "missing_field");
            assert_eq!(msg, format!("field `{name}` is required"));
        }
    }

    #[test]
    fn wrong_json_types_are_precise() {
        let (code, msg) = err(&body("1", r#""a@b.c""#, "5", r#""Bulk""#));
        assert_eq!(code, "invalid_field");
        assert_eq!(msg, "field `path` must be a string, got a number");
        let (code, msg) = err(&body("1", "{}", r#""p""#, r#""Bulk""#));
        assert_eq!(code, "invalid_field");
        assert_eq!(msg, "field `user` must be a string, got an object");
        let (code, msg) = err(&body("1", r#""a@b.c""#, r#""p""#, "true"));
        assert_eq!(code, "invalid_field");
        assert_eq!(msg, "field `retrievalType` must be a string, got a boolean");
    }

    #[test]
    fn tier_is_case_insensitive_and_unknown_tiers_are_named() {
        for (t, want) in [
            ("expedited", RetrievalTier::Expedited),
            ("STANDARD", RetrievalTier::Standard),
            ("Bulk", RetrievalTier::Bulk),
        ] {
            let b = body("1", r#""a@b.c""#, r#""p""#, &format!("\"{t}\""));
            assert_eq!(RestoreRequest::from_json(b.as_bytes()).unwrap().tier, want);
        }
        let (code, msg) = err(&body("1", r#""a@b.c""#, r#""p""#, r#""Glacial""#));
        assert_eq!(code, "unknown_tier");
        assert!(
            msg.contains("retrievalType") && msg.contains("Glacial"),
            "{msg}"
        );
        assert_eq!(
            err(&body("1", r#""a@b.c""#, r#""p""#, r#""""#)).0,
            "unknown_tier"
        );
    }

    #[test]
    fn users_are_trimmed_and_checked() {
        let b = body("1", r#""  ed@example.com  ""#, r#""p""#, r#""Bulk""#);
        assert_eq!(
            RestoreRequest::from_json(b.as_bytes()).unwrap().user,
            "ed@example.com"
        );
        for user in [
            r#""""#,
            r#""   ""#,
            r#""ed""#,
            r#""@example.com""#,
            r#""ed@""#,
            r#""ed@a@b""#,
            r#""ed smith@example.com""#,
            r#""ed@exa\u0000mple.com""#,
            r#""ed@.com""#,
        ] {
            let (code, msg) = err(&body("1", user, r#""p""#, r#""Bulk""#));
            assert_eq!(code, "invalid_field", "{user}");
            assert!(msg.starts_with("field `user`"), "{user}: {msg}");
        }
        let long = format!("\"{}@example.com\"", "a".repeat(MAX_USER_BYTES));
        assert!(err(&body("1", &long, r#""p""#, r#""Bulk""#))
            .1
            .contains("longer than"));
    }

    #[test]
    fn bad_paths_are_rejected_with_the_mapping_reason() {
        for (path, code) in [
            (r#""""#, "invalid_path"),
            (r#""/""#, "invalid_path"),
            (r#""a/../b""#, "invalid_path"),
            (r#""a/\u0000""#, "invalid_path"),
            (r#""/x/Assets/""#, "invalid_path"),
        ] {
            assert_eq!(
                err(&body("1", r#""a@b.c""#, path, r#""Bulk""#)).0,
                code,
                "{path}"
            );
        }
        let long = format!(
            "\"{}\"",
            "a".repeat(crate::domain::path::MAX_PATH_BYTES + 1)
        );
        let (code, msg) = err(&body("1", r#""a@b.c""#, &long, r#""Bulk""#));
        assert_eq!(code, "invalid_path");
        assert!(msg.starts_with("path is longer than 1024"), "{msg}");
    }

    #[test]
    fn bodies_that_are_not_json_objects() {
        for (b, want) in [
            ("", "empty"),
            ("  \n", "empty"),
            ("{", "not valid JSON"),
            ("[1,2]", "got an array"),
            ("\"x\"", "got a string"),
            ("null", "got null"),
        ] {
            let (code, msg) = err(b);
            assert_eq!(code, "invalid_json", "{b:?}");
            assert!(msg.contains(want), "{b:?}: {msg}");
        }
        let big = format!(r#"{{"id": 1, "pad": "{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert!(err(&big).1.contains("larger than"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let b = r#"{"id": "7", "user": "a@b.c", "path": "p", "retrievalType": "bulk", "extra": [1, {"x": null}]}"#;
        assert_eq!(
            RestoreRequest::from_json(b.as_bytes()).unwrap().project_id,
            "7"
        );
    }

    #[test]
    fn stats_and_permissions_bodies() {
        let s = StatsRequest::from_json(br#"{"id": "9", "path": "/a/Assets/9/"}"#).unwrap();
        assert_eq!(s.project_id, "9");
        assert_eq!(s.path_mapping().unwrap().prefix, "9/");
        let e = StatsRequest::from_json(br#"{"id": 9}"#).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("missing_field", "field `path` is required")
        );
        let e = StatsRequest::from_json(br#"{"id": true, "path": "p"}"#).unwrap_err();
        assert_eq!(e.code(), "invalid_field");

        let p = PermissionsRequest::from_json(br#"{"user": " a@b.c "}"#).unwrap();
        assert_eq!(p.user, "a@b.c");
        // A login name is fine here (it is only compared with ALLOWED_USERS)...
        let p = PermissionsRequest::from_json(br#"{"user": "jdoe"}"#).unwrap();
        assert_eq!(p.user, "jdoe");
        // ...but not junk.
        for bad in [r#"{"user": ""}"#, r#"{"user": "a\u0007b"}"#] {
            let e = PermissionsRequest::from_json(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "invalid_field", "{bad}");
        }
        let e = PermissionsRequest::from_json(br#"{"user": 5}"#).unwrap_err();
        assert_eq!(e.to_string(), "field `user` must be a string, got a number");
        assert_eq!(
            PermissionsRequest::from_json(b"{}").unwrap_err().code(),
            "missing_field"
        );
    }
}
