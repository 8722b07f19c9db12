//! Configuration from the environment (DESIGN §7), read once at cold start.
//!
//! The variable names are the seed's, so an operator's existing settings carry over. Every
//! binary passes the variables it cannot run without to [`Config::from_env`]; a missing or
//! invalid one is an [`Error::Config`] that names the variable, so a broken deployment fails at
//! init with a message that says what to fix instead of failing on the first request.
//! Loading goes through a lookup closure ([`Config::from_lookup`]) so tests never touch the
//! process environment.

use std::fmt;

use crate::adapters::smtp::SmtpConfig;
use crate::{Error, Result};

/// Names of the environment variables, for the `required` lists of the binaries.
pub mod vars {
    pub const ASSET_BUCKET_LIST: &str = "ASSET_BUCKET_LIST";
    pub const MANIFEST_BUCKET: &str = "MANIFEST_BUCKET";
    pub const JOBS_TABLE: &str = "JOBS_TABLE";
    pub const ALLOWED_USERS: &str = "ALLOWED_USERS";
    pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    pub const AWS_REGION: &str = "AWS_REGION";
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    pub const AWS_ROLE_ARN: &str = "AWS_ROLE_ARN";
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const AWS_MAX_ATTEMPTS: &str = "AWS_MAX_ATTEMPTS";
    pub const KUBE_NAMESPACE: &str = "KUBE_NAMESPACE";
    pub const WORKER_IMAGE: &str = "WORKER_IMAGE";
    pub const BASE_PATH: &str = "BASE_PATH";
    pub const SMTP_HOST: &str = "SMTP_HOST";
    pub const SMTP_PORT: &str = "SMTP_PORT";
    pub const SMTP_FROM: &str = "SMTP_FROM";
    pub const SMTP_TLS: &str = "SMTP_TLS";
    pub const NOTIFICATION_EMAIL: &str = "NOTIFICATION_EMAIL";
    pub const PLUTO_PROJECT_URL: &str = "PLUTO_PROJECT_URL";
    pub const PRICE_LIST: &str = "PRICE_LIST";
    pub const RESTORE_DAYS: &str = "RESTORE_DAYS";
    pub const RESTORE_RATE_LIMIT: &str = "RESTORE_RATE_LIMIT";
    pub const RESTORE_CONCURRENCY: &str = "RESTORE_CONCURRENCY";
    pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
}

use vars::*;

/// Default DynamoDB table of jobs.
pub const DEFAULT_JOBS_TABLE: &str = "restore-jobs";
/// Default days a restored copy stays readable.
pub const DEFAULT_RESTORE_DAYS: i32 = crate::domain::storage::DEFAULT_RESTORE_DAYS;
/// Default client-side RestoreObject rate; S3 allows about 1,000/s per account and region, and
/// other tools of the account need some of it.
pub const DEFAULT_RESTORE_RATE_LIMIT: u32 = 500;
/// Default RestoreObject calls in flight.
pub const DEFAULT_RESTORE_CONCURRENCY: usize = 64;
/// Default SDK attempts per call (the SDK's own default is 3; mass restores meet SlowDown).
pub const DEFAULT_AWS_MAX_ATTEMPTS: u32 = 5;
/// Default price list name (today's AWS list prices; see `domain::cost`).
pub const DEFAULT_PRICE_LIST: &str = crate::domain::cost::DEFAULT_PRICE_LIST;
/// Namespace of the worker Jobs when `KUBE_NAMESPACE` is set but empty (the seed's default).
pub const DEFAULT_KUBE_NAMESPACE: &str = "default";

/// Static AWS credentials from the environment. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Everything the binaries read from the environment. Optional settings are `Option`s; the ones
/// a binary listed as required are guaranteed `Some`/non-empty after loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ASSET_BUCKET_LIST`: buckets to list, in order (first bucket wins on duplicate keys).
    pub asset_buckets: Vec<String>,
    /// `MANIFEST_BUCKET`: where manifests and reports are written.
    pub manifest_bucket: Option<String>,
    /// `JOBS_TABLE` (default `restore-jobs`).
    pub jobs_table: String,
    /// `ALLOWED_USERS`: users who may restore directly, lowercased. Empty allows no one.
    pub allowed_users: Vec<String>,
    /// `AWS_DEFAULT_REGION` (or `AWS_REGION`, which Lambda sets).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: emulator endpoint; S3 then uses path-style addressing.
    pub endpoint_url: Option<String>,
    /// `AWS_ROLE_ARN`: role assumed for every AWS call when set.
    pub role_arn: Option<String>,
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) when both are set;
    /// otherwise the SDK's default chain (Lambda role, profile, ...) applies.
    pub credentials: Option<StaticCredentials>,
    /// `AWS_MAX_ATTEMPTS`: SDK attempts per call, retries with exponential backoff and jitter.
    pub aws_max_attempts: u32,
    /// `KUBE_NAMESPACE`: set turns the Kubernetes shim on (empty means `default`).
    pub kube_namespace: Option<String>,
    /// `WORKER_IMAGE`: image of the on-prem copy Job; required when the shim is on.
    pub worker_image: Option<String>,
    /// `BASE_PATH`: local assets root on premises.
    pub base_path: Option<String>,
    /// `SMTP_HOST`/`SMTP_PORT`/`SMTP_TLS` (+ `SMTP_FROM`): mail by SMTP instead of SES; parsed
    /// by the SMTP adapter's own loader so there is one reading of these variables.
    pub smtp: Option<SmtpConfig>,
    /// `SMTP_FROM`: sender address of every mail (SES or SMTP); required with `SMTP_HOST`.
    pub mail_from: Option<String>,
    /// `NOTIFICATION_EMAIL`: comma-separated recipients told about every job.
    pub notification_emails: Vec<String>,
    /// `PLUTO_PROJECT_URL`: base URL, the project id is appended for links in mails.
    pub pluto_project_url: Option<String>,
    /// `PRICE_LIST`: name of a bundled price list or path of a JSON file (default `aws`).
    pub price_list: String,
    /// `RESTORE_DAYS`: days a restored copy stays (default 7).
    pub restore_days: i32,
    /// `RESTORE_RATE_LIMIT`: RestoreObject calls per second, client side (default 500).
    pub restore_rate_limit: u32,
    /// `RESTORE_CONCURRENCY`: RestoreObject calls in flight (default 64).
    pub restore_concurrency: usize,
}

impl Config {
    /// Loads from the process environment; `required` names the variables this binary needs.
    pub fn from_env(required: &[&str]) -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok(), required)
    }

    /// Loads from any lookup (a map in tests). Empty or blank values count as unset, except
    /// `KUBE_NAMESPACE`, whose presence alone turns the shim on. Every missing required variable
    /// is named in one error.
    pub fn from_lookup<F>(lookup: F, required: &[&str]) -> Result<Self>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |name: &str| -> Option<String> {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| match *name {
                ASSET_BUCKET_LIST | NOTIFICATION_EMAIL | ALLOWED_USERS => {
                    get(name).is_none_or(|v| list(&v).is_empty())
                }
                KUBE_NAMESPACE => lookup(name).is_none(),
                _ => get(name).is_none(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "missing required environment variable{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )));
        }

        let mut asset_buckets: Vec<String> = Vec::new();
        for bucket in get(ASSET_BUCKET_LIST)
            .as_deref()
            .map(list)
            .unwrap_or_default()
        {
            check_bucket(ASSET_BUCKET_LIST, &bucket)?;
            if !asset_buckets.contains(&bucket) {
                asset_buckets.push(bucket);
            }
        }
        let manifest_bucket = get(MANIFEST_BUCKET);
        if let Some(bucket) = &manifest_bucket {
            check_bucket(MANIFEST_BUCKET, bucket)?;
        }

        let credentials = match (get(AWS_ACCESS_KEY_ID), get(AWS_SECRET_ACCESS_KEY)) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: get(AWS_SESSION_TOKEN),
            }),
            (None, None) => None,
            (Some(_), None) => return Err(missing_pair(AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID)),
            (None, Some(_)) => return Err(missing_pair(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)),
        };

        let endpoint_url = get(AWS_ENDPOINT_URL);
        if let Some(url) = &endpoint_url {
            check_url(AWS_ENDPOINT_URL, url)?;
        }
        let role_arn = get(AWS_ROLE_ARN);
        if let Some(arn) = &role_arn {
            if !arn.starts_with("arn:") || !arn.contains(":role/") {
                return Err(invalid(
                    AWS_ROLE_ARN,
                    arn,
                    "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                ));
            }
        }

        let kube_namespace = lookup(KUBE_NAMESPACE).map(|v| {
            let v = v.trim();
            if v.is_empty() {
                DEFAULT_KUBE_NAMESPACE.to_owned()
            } else {
                v.to_owned()
            }
        });
        if let Some(ns) = &kube_namespace {
            if !is_dns_label(ns) {
                return Err(invalid(
                    KUBE_NAMESPACE,
                    ns,
                    "a Kubernetes namespace name (lowercase letters, digits, '-', at most 63)",
                ));
            }
        }
        let worker_image = get(WORKER_IMAGE);
        if kube_namespace.is_some() && worker_image.is_none() {
            return Err(Error::Config(format!(
                "missing required environment variable {WORKER_IMAGE} (needed because {KUBE_NAMESPACE} is set)"
            )));
        }

        // The SDK and the SMTP client take their CA roots from this file alone when it is set
        // (template.yaml sets it): a wrong path would leave no root trusted and every HTTPS
        // call failing later with a TLS error that does not say why.
        if let Some(path) = get(SSL_CERT_FILE) {
            if !std::path::Path::new(&path).is_file() {
                return Err(invalid(
                    SSL_CERT_FILE,
                    &path,
                    "the path of an existing PEM bundle of CA certificates",
                ));
            }
        }

        let mail_from = get(SMTP_FROM);
        if let Some(from) = &mail_from {
            check_email(SMTP_FROM, from)?;
        }
        if get(SMTP_HOST).is_some() && mail_from.is_none() {
            return Err(Error::Config(format!(
                "missing required environment variable {SMTP_FROM} (needed because {SMTP_HOST} is set)"
            )));
        }
        let smtp = SmtpConfig::from_lookup(get)?;
        let notification_emails = get(NOTIFICATION_EMAIL)
            .as_deref()
            .map(list)
            .unwrap_or_default();
        for address in &notification_emails {
            check_email(NOTIFICATION_EMAIL, address)?;
        }
        let pluto_project_url = get(PLUTO_PROJECT_URL);
        if let Some(url) = &pluto_project_url {
            check_url(PLUTO_PROJECT_URL, url)?;
        }

        Ok(Config {
            asset_buckets,
            manifest_bucket,
            jobs_table: get(JOBS_TABLE).unwrap_or_else(|| DEFAULT_JOBS_TABLE.to_owned()),
            allowed_users: get(ALLOWED_USERS)
                .as_deref()
                .map(list)
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.to_lowercase())
                .collect(),
            region: get(AWS_DEFAULT_REGION).or_else(|| get(AWS_REGION)),
            endpoint_url,
            role_arn,
            credentials,
            aws_max_attempts: number(&get, AWS_MAX_ATTEMPTS, DEFAULT_AWS_MAX_ATTEMPTS, 1, 20)?,
            kube_namespace,
            worker_image,
            base_path: get(BASE_PATH),
            smtp,
            mail_from,
            notification_emails,
            pluto_project_url,
            price_list: get(PRICE_LIST).unwrap_or_else(|| DEFAULT_PRICE_LIST.to_owned()),
            restore_days: number(&get, RESTORE_DAYS, DEFAULT_RESTORE_DAYS, 1, 3650)?,
            restore_rate_limit: number(
                &get,
                RESTORE_RATE_LIMIT,
                DEFAULT_RESTORE_RATE_LIMIT,
                1,
                10_000,
            )?,
            restore_concurrency: number(
                &get,
                RESTORE_CONCURRENCY,
                DEFAULT_RESTORE_CONCURRENCY,
                1,
                1024,
            )?,
        })
    }

    /// Whether `user` may restore without approval (`ALLOWED_USERS`, case-insensitive).
    pub fn user_allowed(&self, user: &str) -> bool {
        let user = user.trim().to_lowercase();
        self.allowed_users.contains(&user)
    }
}

/// The value of an optional setting a code path cannot do without, or a [`Error::Config`]
/// naming its variable (for settings a binary needs only on some paths).
pub fn required<'a>(value: &'a Option<String>, var: &str) -> Result<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| Error::Config(format!("missing required environment variable {var}")))
}

/// Builds the AWS SDK configuration once at init: region, endpoint override (emulator), static
/// credentials when given, standard retry mode (exponential backoff with jitter) with
/// `AWS_MAX_ATTEMPTS` attempts, and the `AWS_ROLE_ARN` role assumed through STS when set.
/// Every client built from it (and the STS client of the role) shares one HTTPS client, the
/// SDK's default one, whose TLS connector is checked once ([`crate::sdk_http`]).
/// Variables the SDK reads itself (e.g. `AWS_ENDPOINT_URL_S3`, profiles, `HTTPS_PROXY`,
/// `SSL_CERT_FILE`) still apply.
pub async fn aws_sdk_config(config: &Config) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::{BehaviorVersion, Region};

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(config.aws_max_attempts));
    if let Some(client) = crate::sdk_http::shared_https_client(BehaviorVersion::latest()) {
        loader = loader.http_client(client);
    }
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = &config.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "environment",
        ));
    }
    let base = loader.load().await;
    let Some(role) = &config.role_arn else {
        return base;
    };
    tracing::info!(role_arn = %role, "assuming role for AWS calls");
    let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
        .session_name("glacier-restore")
        .configure(&base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
        .build()
}

/// Comma-separated list, trimmed, empty items dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn invalid(var: &str, value: &str, expected: &str) -> Error {
    Error::Config(format!(
        "invalid value {value:?} for {var}: expected {expected}"
    ))
}

fn missing_pair(missing: &str, present: &str) -> Error {
    Error::Config(format!(
        "missing required environment variable {missing} (needed because {present} is set)"
    ))
}

fn number<T, G>(get: &G, var: &str, default: T, min: T, max: T) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    G: Fn(&str) -> Option<String>,
{
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(invalid(
            var,
            &raw,
            &format!("an integer from {min} to {max}"),
        )),
    }
}

/// S3 bucket naming rules (3–63 lowercase letters, digits, `.`, `-`; alphanumeric at both ends):
/// catches a typo or a pasted `s3://` URL at cold start instead of at the first listing.
fn check_bucket(var: &str, bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            var,
            bucket,
            "S3 bucket names (3-63 lowercase letters, digits, '.', '-'), comma-separated",
        ))
    }
}

/// An address, bare or as `Name <addr@example.com>`.
fn check_email(var: &str, value: &str) -> Result<()> {
    let address = match (value.rfind('<'), value.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => value,
    };
    let ok = match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(var, value, "an email address"))
    }
}

fn check_url(var: &str, url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(invalid(var, url, "an http:// or https:// URL")),
    }
}

fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)], required: &[&str]) -> Result<Config> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned(), required)
    }

    fn message(err: Error) -> String {
        match err {
            Error::Config(message) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = load(&[], &[]).unwrap();
        assert!(config.asset_buckets.is_empty());
        assert_eq!(config.jobs_table, "restore-jobs");
        assert_eq!(config.price_list, "aws");
        assert_eq!(config.restore_days, 7);
        assert_eq!(config.restore_rate_limit, 500);
        assert_eq!(config.restore_concurrency, 64);
        assert_eq!(config.aws_max_attempts, 5);
        assert_eq!(config.kube_namespace, None);
        assert_eq!(config.smtp, None);
        assert_eq!(config.credentials, None);
    }

    #[test]
    fn seed_variables_are_read() {
        let config = load(
            &[
                ("ASSET_BUCKET_LIST", " media-a , media-b,,media-a "),
                ("MANIFEST_BUCKET", "restore-manifests"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/restore"),
                ("KUBE_NAMESPACE", "media"),
                ("WORKER_IMAGE", "registry.local/restore-worker:1"),
                ("BASE_PATH", "/srv/projects"),
                ("SMTP_HOST", "mail.local"),
                ("SMTP_PORT", "2525"),
                ("SMTP_FROM", "restore@example.com"),
                ("NOTIFICATION_EMAIL", "ops@example.com, archive@example.com"),
                ("PLUTO_PROJECT_URL", "https://pluto.example.com/project/"),
                ("ALLOWED_USERS", "Editor@Example.com,boss@example.com"),
            ],
            &[ASSET_BUCKET_LIST, MANIFEST_BUCKET],
        )
        .unwrap();
        assert_eq!(config.asset_buckets, ["media-a", "media-b"]);
        assert_eq!(config.manifest_bucket.as_deref(), Some("restore-manifests"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.kube_namespace.as_deref(), Some("media"));
        let smtp = config.smtp.clone().expect("SMTP settings");
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.local", 2525));
        assert_eq!(smtp.from, "restore@example.com");
        assert_eq!(
            config.notification_emails,
            ["ops@example.com", "archive@example.com"]
        );
        assert!(config.user_allowed("editor@example.com"));
        assert!(config.user_allowed(" EDITOR@example.COM "));
        assert!(!config.user_allowed("intruder@example.com"));
    }

    #[test]
    fn missing_required_variables_are_all_named() {
        let err = load(
            &[("MANIFEST_BUCKET", "")],
            &[ASSET_BUCKET_LIST, MANIFEST_BUCKET, NOTIFICATION_EMAIL],
        )
        .unwrap_err();
        assert_eq!(err.code(), "configuration_error");
        assert_eq!(
            message(err),
            "missing required environment variables ASSET_BUCKET_LIST, MANIFEST_BUCKET, NOTIFICATION_EMAIL"
        );
    }

    #[test]
    fn a_list_of_only_commas_is_missing() {
        let err = load(&[("ASSET_BUCKET_LIST", " , ,")], &[ASSET_BUCKET_LIST]).unwrap_err();
        assert_eq!(
            message(err),
            "missing required environment variable ASSET_BUCKET_LIST"
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("RESTORE_DAYS", "0")], "RESTORE_DAYS"),
            (&[("RESTORE_DAYS", "seven")], "RESTORE_DAYS"),
            (&[("AWS_MAX_ATTEMPTS", "100")], "AWS_MAX_ATTEMPTS"),
            (&[("RESTORE_RATE_LIMIT", "-1")], "RESTORE_RATE_LIMIT"),
            (&[("RESTORE_CONCURRENCY", "0")], "RESTORE_CONCURRENCY"),
            (&[("ASSET_BUCKET_LIST", "s3://media")], "ASSET_BUCKET_LIST"),
            (&[("MANIFEST_BUCKET", "Bad_Bucket")], "MANIFEST_BUCKET"),
            (
                &[("AWS_ENDPOINT_URL", "localhost:5000")],
                "AWS_ENDPOINT_URL",
            ),
            (&[("AWS_ROLE_ARN", "restore-role")], "AWS_ROLE_ARN"),
            (
                &[("SSL_CERT_FILE", "/nonexistent/ca-bundle.crt")],
                "SSL_CERT_FILE",
            ),
            (&[("NOTIFICATION_EMAIL", "ops")], "NOTIFICATION_EMAIL"),
            (
                &[("PLUTO_PROJECT_URL", "pluto/project")],
                "PLUTO_PROJECT_URL",
            ),
            (
                &[
                    ("SMTP_HOST", "mail"),
                    ("SMTP_FROM", "a@b.c"),
                    ("SMTP_PORT", "70000"),
                ],
                "SMTP_PORT",
            ),
            (
                &[
                    ("SMTP_HOST", "mail"),
                    ("SMTP_FROM", "a@b.c"),
                    ("SMTP_TLS", "maybe"),
                ],
                "SMTP_TLS",
            ),
            (
                &[("SMTP_FROM", "Restore <restore.example.com>")],
                "SMTP_FROM",
            ),
            (
                &[("KUBE_NAMESPACE", "Media_NS"), ("WORKER_IMAGE", "w")],
                "KUBE_NAMESPACE",
            ),
        ];
        for (pairs, var) in cases {
            let err = load(pairs, &[]).expect_err(var);
            let text = message(err);
            assert!(text.contains(var), "{text:?} should name {var}");
        }
    }

    #[test]
    fn an_existing_ca_bundle_is_accepted() {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert!(load(&[("SSL_CERT_FILE", bundle)], &[]).is_ok());
    }

    #[test]
    fn dependent_variables_are_required_together() {
        let err = load(&[("SMTP_HOST", "mail.local")], &[]).unwrap_err();
        assert!(message(err).contains("SMTP_FROM"));
        let err = load(&[("KUBE_NAMESPACE", "media")], &[]).unwrap_err();
        assert!(message(err).contains("WORKER_IMAGE"));
        let err = load(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")], &[]).unwrap_err();
        assert!(message(err).contains("AWS_SECRET_ACCESS_KEY"));
        let err = load(&[("AWS_SECRET_ACCESS_KEY", "s3cr3t")], &[]).unwrap_err();
        let text = message(err);
        assert!(text.contains("AWS_ACCESS_KEY_ID"));
        assert!(!text.contains("s3cr3t"), "never echo a secret: {text}");
    }

    #[test]
    fn empty_kube_namespace_means_default() {
        let config = load(
            &[("KUBE_NAMESPACE", ""), ("WORKER_IMAGE", "w:1")],
            &[KUBE_NAMESPACE],
        )
        .unwrap();
        assert_eq!(config.kube_namespace.as_deref(), Some("default"));
        let err = load(&[], &[KUBE_NAMESPACE]).unwrap_err();
        assert!(message(err).contains("KUBE_NAMESPACE"));
    }

    #[test]
    fn sender_may_carry_a_display_name() {
        let config = load(&[("SMTP_FROM", "Media Restore <restore@example.com>")], &[]).unwrap();
        assert_eq!(
            config.mail_from.as_deref(),
            Some("Media Restore <restore@example.com>")
        );
    }

    #[test]
    fn region_falls_back_to_aws_region() {
        let config = load(&[("AWS_REGION", "us-west-2")], &[]).unwrap();
        assert_eq!(config.region.as_deref(), Some("us-west-2"));
        let config = load(
            &[
                ("AWS_REGION", "us-west-2"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let config = load(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
                ("AWS_SESSION_TOKEN", "session-token-secret"),
            ],
            &[],
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert!(!shown.contains("session-token-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn required_helper_names_the_variable() {
        let config = load(&[], &[]).unwrap();
        let err = required(&config.manifest_bucket, MANIFEST_BUCKET).unwrap_err();
        assert!(message(err).contains("MANIFEST_BUCKET"));
        let config = load(&[("MANIFEST_BUCKET", "manifests")], &[]).unwrap();
        assert_eq!(
            required(&config.manifest_bucket, MANIFEST_BUCKET).unwrap(),
            "manifests"
        );
    }
}
