//! Worker settings from the environment (set by the Job the kube shim creates) and arguments.

use std::path::PathBuf;

use shared::{Error, Result};

/// Default number of objects copied at once (`WORKER_CONCURRENCY`).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Upper bound on `WORKER_CONCURRENCY`: each slot holds one open download and one file.
pub const MAX_CONCURRENCY: usize = 256;

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/key`; the key is taken as is (not URL-decoded).
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = || {
            Error::validation(
                "invalid_manifest_uri",
                format!("manifest location {uri:?} is not s3://bucket/key"),
            )
        };
        let rest = uri.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(invalid)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid());
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What one run of the worker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The JSON report of the finished restore (`--manifest` or `MANIFEST_URI`).
    pub manifest: S3Location,
    /// Local assets root the keys are copied under (`BASE_PATH`).
    pub base_path: PathBuf,
    /// Objects copied at once (`WORKER_CONCURRENCY`, default 8).
    pub concurrency: usize,
    /// Owner given to copied files and created directories (`FILE_OWNER_UID`/`FILE_OWNER_GID`).
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    /// When set (`JOB_ID`), the report must be this job's: guards against a mixed-up manifest.
    pub expected_job_id: Option<String>,
    /// `WORKER_CHECKSUM=true`: compare the content of every existing file, even one whose size
    /// and modification time match the object's.
    pub checksum: bool,
}

impl WorkerConfig {
    /// A config with defaults for the given manifest and base path.
    pub fn new(manifest: S3Location, base_path: impl Into<PathBuf>) -> Self {
        WorkerConfig {
            manifest,
            base_path: base_path.into(),
            concurrency: DEFAULT_CONCURRENCY,
            owner_uid: None,
            owner_gid: None,
            expected_job_id: None,
            checksum: false,
        }
    }

    /// Reads the process arguments (`--manifest s3://…`) and environment.
    pub fn from_env_and_args(args: impl IntoIterator<Item = String>) -> Result<Self> {
        Self::from_parts(args, |name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env_and_args`] with an injectable environment lookup.
    pub fn from_parts(
        args: impl IntoIterator<Item = String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut manifest_arg = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if let Some(value) = arg.strip_prefix("--manifest=") {
                manifest_arg = Some(value.to_string());
            } else if arg == "--manifest" {
                manifest_arg = Some(args.next().ok_or_else(|| {
                    Error::Config("--manifest needs a value (s3://bucket/key)".into())
                })?);
            } else {
                return Err(Error::Config(format!(
                    "unknown argument {arg:?}; usage: restore-worker [--manifest s3://bucket/key]"
                )));
            }
        }
        let manifest = manifest_arg
            .or_else(|| get("MANIFEST_URI"))
            .ok_or_else(|| {
                Error::Config("MANIFEST_URI (or --manifest s3://bucket/key) is required".into())
            })?;
        let manifest = S3Location::parse(&manifest)
            .map_err(|e| Error::Config(format!("MANIFEST_URI: {e}")))?;
        let base = get("BASE_PATH").ok_or_else(|| Error::Config("BASE_PATH is required".into()))?;
        let base_path = PathBuf::from(&base);
        if !base_path.is_absolute() {
            return Err(Error::Config(format!(
                "BASE_PATH {base:?} must be an absolute path"
            )));
        }
        let mut config = WorkerConfig::new(manifest, base_path);
        if let Some(n) = parse(&get, "WORKER_CONCURRENCY")? {
            if !(1..=MAX_CONCURRENCY).contains(&n) {
                return Err(Error::Config(format!(
                    "WORKER_CONCURRENCY must be between 1 and {MAX_CONCURRENCY}, got {n}"
                )));
            }
            config.concurrency = n;
        }
        config.owner_uid = parse(&get, "FILE_OWNER_UID")?;
        config.owner_gid = parse(&get, "FILE_OWNER_GID")?;
        config.expected_job_id = get("JOB_ID");
        config.checksum = match get("WORKER_CHECKSUM").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(Error::Config(format!(
                    "WORKER_CHECKSUM must be true or false, got {other:?}"
                )))
            }
        };
        Ok(config)
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>> {
    get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::Config(format!("{name} {v:?} is not a valid number")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn argument_wins_over_env_and_defaults_apply() {
        let config = WorkerConfig::from_parts(
            [
                "--manifest".to_string(),
                "s3://m/job 1/report.json".to_string(),
            ],
            env(&[("MANIFEST_URI", "s3://other/x"), ("BASE_PATH", "/assets")]),
        )
        .unwrap();
        assert_eq!(config.manifest.bucket, "m");
        assert_eq!(config.manifest.key, "job 1/report.json");
        assert_eq!(config.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(config.owner_uid, None);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |args: Vec<&str>, vars| {
            WorkerConfig::from_parts(args.into_iter().map(String::from), env(vars))
                .unwrap_err()
                .to_string()
        };
        assert!(err(vec![], &[("BASE_PATH", "/a")]).contains("MANIFEST_URI"));
        assert!(err(vec![], &[("MANIFEST_URI", "s3://m/k")]).contains("BASE_PATH"));
        assert!(err(
            vec![],
            &[("MANIFEST_URI", "s3://m/k"), ("BASE_PATH", "rel")]
        )
        .contains("absolute"));
        assert!(err(
            vec![],
            &[("MANIFEST_URI", "http://m/k"), ("BASE_PATH", "/a")]
        )
        .contains("s3://"));
        assert!(err(
            vec![],
            &[
                ("MANIFEST_URI", "s3://m/k"),
                ("BASE_PATH", "/a"),
                ("WORKER_CONCURRENCY", "0")
            ]
        )
        .contains("WORKER_CONCURRENCY"));
        assert!(err(
            vec![],
            &[
                ("MANIFEST_URI", "s3://m/k"),
                ("BASE_PATH", "/a"),
                ("FILE_OWNER_UID", "me")
            ]
        )
        .contains("FILE_OWNER_UID"));
        assert!(err(vec!["--bogus"], &[]).contains("--bogus"));
    }
}
