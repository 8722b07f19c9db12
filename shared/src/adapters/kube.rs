//! Kubernetes dispatcher (DESIGN §6): a finished restore becomes a `batch/v1` Job running the
//! `restore-worker` image, which copies the restored objects onto the on-premises storage.
//!
//! Lambda can't reach the project's storage, so the copy is handed to the cluster. The Job's
//! name is derived from the restore job id alone, so a re-dispatch (stream retry, duplicate
//! finalize) finds the Job already there (HTTP 409) instead of starting a second copy.
//! The Job carries no secret in its plain env: AWS credentials come from a Secret reference
//! (`envFrom`) or the pod's role (IRSA service account).

use std::collections::BTreeMap;

use ::k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use ::k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvFromSource, EnvVar, HostPathVolumeSource,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Volume, VolumeMount,
};
use ::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ::kube::api::{Api, PostParams};
use async_trait::async_trait;

pub use crate::ports::job_name;
use crate::ports::{
    CopyPhase, CopyStatus, DispatchRequest, DispatchStatus, DispatchTarget, Dispatcher,
};
use crate::{Error, Result};

/// Label and annotation prefix of everything the shim creates.
pub const LABEL_PREFIX: &str = "glacier-restore";
/// Name of the worker container (and of the `app.kubernetes.io/name` label).
pub const CONTAINER_NAME: &str = "restore-worker";
const VOLUME_NAME: &str = "assets";
const MAX_NAME: usize = 63;

/// Where the assets volume mounted at `BASE_PATH` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetsVolume {
    /// A PersistentVolumeClaim holding the assets root (`WORKER_PVC`).
    Claim(String),
    /// A directory on the node (`WORKER_HOST_PATH`), e.g. an NFS mount present on every node.
    HostPath(String),
    /// A hostPath at the request's local base (the on-prem path the user asked for, up to
    /// `/Assets/`): the seed's behaviour when the nodes mount the storage at the same path.
    RequestLocalBase,
}

/// Settings of the Jobs the shim creates, read from the environment at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeDispatchConfig {
    /// `KUBE_NAMESPACE` ("default" when set but empty).
    pub namespace: String,
    /// `WORKER_IMAGE` (required).
    pub image: String,
    /// `BASE_PATH`: where the assets volume is mounted in the container (default `/assets`).
    pub base_path: String,
    pub volume: AssetsVolume,
    /// `WORKER_AWS_SECRET`: Secret whose keys become the worker's env (AWS credentials).
    pub aws_secret: Option<String>,
    /// `WORKER_SERVICE_ACCOUNT`: service account of the pod (IRSA role instead of a Secret).
    pub service_account: Option<String>,
    /// `AWS_DEFAULT_REGION` handed to the worker.
    pub region: Option<String>,
    /// `WORKER_AWS_ENDPOINT_URL`: S3 endpoint override for the worker (S3-compatible stores).
    pub endpoint_url: Option<String>,
    /// `WORKER_CONCURRENCY` handed to the worker.
    pub concurrency: Option<u32>,
    /// `FILE_OWNER_UID` / `FILE_OWNER_GID` handed to the worker (chown of copied files).
    pub file_owner_uid: Option<u32>,
    pub file_owner_gid: Option<u32>,
    /// `WORKER_CHECKSUM=true` handed to the worker (compare content of every existing file).
    pub checksum: bool,
    /// `WORKER_TTL_SECONDS`: finished Jobs are deleted after this (default one day).
    pub ttl_seconds_after_finished: i32,
    /// `WORKER_BACKOFF_LIMIT`: pod retries before the Job fails (default 3).
    pub backoff_limit: i32,
}

impl KubeDispatchConfig {
    /// A config with the defaults, for the given namespace and image.
    pub fn new(namespace: impl Into<String>, image: impl Into<String>) -> Self {
        KubeDispatchConfig {
            namespace: namespace.into(),
            image: image.into(),
            base_path: "/assets".into(),
            volume: AssetsVolume::RequestLocalBase,
            aws_secret: None,
            service_account: None,
            region: None,
            endpoint_url: None,
            concurrency: None,
            file_owner_uid: None,
            file_owner_gid: None,
            checksum: false,
            ttl_seconds_after_finished: 86_400,
            backoff_limit: 3,
        }
    }

    /// Reads the process environment; `None` when `KUBE_NAMESPACE` is unset (shim off).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`] with an injectable lookup, so tests need not mutate the env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(namespace) = lookup("KUBE_NAMESPACE") else {
            return Ok(None);
        };
        let namespace = match namespace.trim() {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        if !is_dns_label(&namespace) {
            return Err(Error::Config(format!(
                "KUBE_NAMESPACE {namespace:?} is not a valid namespace name"
            )));
        }
        let image = get("WORKER_IMAGE").ok_or_else(|| {
            Error::Config("WORKER_IMAGE is required when KUBE_NAMESPACE is set".into())
        })?;
        let mut config = KubeDispatchConfig::new(namespace, image);
        if let Some(base) = get("BASE_PATH") {
            if !base.starts_with('/') {
                return Err(Error::Config(format!(
                    "BASE_PATH {base:?} must be an absolute path"
                )));
            }
            config.base_path = base;
        }
        config.volume = match (get("WORKER_PVC"), get("WORKER_HOST_PATH")) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "set only one of WORKER_PVC and WORKER_HOST_PATH".into(),
                ))
            }
            (Some(claim), None) => AssetsVolume::Claim(claim),
            (None, Some(path)) if path.starts_with('/') => AssetsVolume::HostPath(path),
            (None, Some(path)) => {
                return Err(Error::Config(format!(
                    "WORKER_HOST_PATH {path:?} must be an absolute path"
                )))
            }
            (None, None) => AssetsVolume::RequestLocalBase,
        };
        config.aws_secret = get("WORKER_AWS_SECRET");
        config.service_account = get("WORKER_SERVICE_ACCOUNT");
        config.region = get("AWS_DEFAULT_REGION").or_else(|| get("AWS_REGION"));
        config.endpoint_url = get("WORKER_AWS_ENDPOINT_URL");
        config.concurrency = parse_var(&get, "WORKER_CONCURRENCY")?;
        config.file_owner_uid = parse_var(&get, "FILE_OWNER_UID")?;
        config.file_owner_gid = parse_var(&get, "FILE_OWNER_GID")?;
        config.checksum = parse_var::<bool>(&get, "WORKER_CHECKSUM")?.unwrap_or(false);
        if let Some(ttl) = parse_var(&get, "WORKER_TTL_SECONDS")? {
            config.ttl_seconds_after_finished = ttl;
        }
        if let Some(limit) = parse_var(&get, "WORKER_BACKOFF_LIMIT")? {
            config.backoff_limit = limit;
        }
        if config.concurrency == Some(0) {
            return Err(Error::Config(
                "WORKER_CONCURRENCY must be at least 1".into(),
            ));
        }
        if config.ttl_seconds_after_finished < 0 || config.backoff_limit < 0 {
            return Err(Error::Config(
                "WORKER_TTL_SECONDS and WORKER_BACKOFF_LIMIT must not be negative".into(),
            ));
        }
        Ok(Some(config))
    }
}

fn parse_var<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>> {
    get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Error::Config(format!("{name} {v:?} is not a valid value")))
        })
        .transpose()
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A label value (at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends) for an id; the
/// exact id is kept in an annotation.
fn label_value(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// Creates and inspects the copy Jobs.
#[derive(Clone)]
pub struct KubeDispatcher {
    jobs: Api<Job>,
    config: KubeDispatchConfig,
}

impl KubeDispatcher {
    /// A dispatcher using `client` (tests hand in one pointed at a loopback fake).
    pub fn new(client: ::kube::Client, config: KubeDispatchConfig) -> Self {
        let jobs = Api::namespaced(client, &config.namespace);
        KubeDispatcher { jobs, config }
    }

    /// A dispatcher configured the standard way: in-cluster service account when running in a
    /// pod, else `KUBECONFIG` / `~/.kube/config`.
    pub async fn infer(config: KubeDispatchConfig) -> Result<Self> {
        let client = ::kube::Client::try_default()
            .await
            .map_err(|e| Error::Config(format!("Kubernetes client configuration: {e}")))?;
        Ok(Self::new(client, config))
    }

    /// The dispatcher of a function's cold start: `None` when `KUBE_NAMESPACE` is unset (no
    /// on-premises copy), an error naming the variable when the settings are wrong.
    pub async fn from_env() -> Result<Option<Self>> {
        match KubeDispatchConfig::from_env()? {
            Some(config) => Ok(Some(Self::infer(config).await?)),
            None => Ok(None),
        }
    }

    /// The settings the Jobs are built from.
    pub fn config(&self) -> &KubeDispatchConfig {
        &self.config
    }

    /// The Job the shim creates for `request` (public so the template in `k8s/` and tests can
    /// be checked against it).
    pub fn job_for(&self, request: &DispatchRequest) -> Result<Job> {
        let c = &self.config;
        if request.job_id.trim().is_empty() {
            return Err(Error::validation(
                "invalid_dispatch",
                "dispatch needs a job id",
            ));
        }
        if !request.manifest_uri.starts_with("s3://") {
            return Err(Error::validation(
                "invalid_dispatch",
                format!(
                    "manifest location {:?} is not an s3:// URI",
                    request.manifest_uri
                ),
            ));
        }
        let name = job_name(&request.job_id);
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                CONTAINER_NAME.to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "glacier-restore".to_string(),
            ),
            (
                format!("{LABEL_PREFIX}/project-id"),
                label_value(&request.project_id),
            ),
            (
                format!("{LABEL_PREFIX}/job-id"),
                label_value(&request.job_id),
            ),
        ]);
        let annotations = BTreeMap::from([
            (format!("{LABEL_PREFIX}/job-id"), request.job_id.clone()),
            (
                format!("{LABEL_PREFIX}/project-id"),
                request.project_id.clone(),
            ),
            (
                format!("{LABEL_PREFIX}/manifest"),
                request.manifest_uri.clone(),
            ),
            (
                format!("{LABEL_PREFIX}/local-base"),
                request.local_base.clone(),
            ),
        ]);

        let volume = match &c.volume {
            AssetsVolume::Claim(claim) => Volume {
                name: VOLUME_NAME.into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: Some(false),
                }),
                ..Volume::default()
            },
            AssetsVolume::HostPath(path) => host_path(path),
            AssetsVolume::RequestLocalBase => {
                let base = request.local_base.trim_end_matches('/');
                if !base.starts_with('/') || base.split('/').any(|s| s == "..") {
                    return Err(Error::Config(format!(
                        "no assets volume for the copy: the request's local base {:?} is not \
                         an absolute path; set WORKER_PVC or WORKER_HOST_PATH",
                        request.local_base
                    )));
                }
                host_path(base)
            }
        };

        let mut env_vars = vec![
            env("JOB_ID", &request.job_id),
            env("PROJECT_ID", &request.project_id),
            env("MANIFEST_URI", &request.manifest_uri),
            env("BASE_PATH", &c.base_path),
            env("LOCAL_BASE", &request.local_base),
        ];
        if let Some(region) = &c.region {
            env_vars.push(env("AWS_DEFAULT_REGION", region));
            env_vars.push(env("AWS_REGION", region));
        }
        if let Some(url) = &c.endpoint_url {
            env_vars.push(env("AWS_ENDPOINT_URL", url));
        }
        if let Some(n) = c.concurrency {
            env_vars.push(env("WORKER_CONCURRENCY", n.to_string()));
        }
        if let Some(uid) = c.file_owner_uid {
            env_vars.push(env("FILE_OWNER_UID", uid.to_string()));
        }
        if let Some(gid) = c.file_owner_gid {
            env_vars.push(env("FILE_OWNER_GID", gid.to_string()));
        }
        if c.checksum {
            env_vars.push(env("WORKER_CHECKSUM", "true"));
        }
        let env_from = c.aws_secret.as_ref().map(|secret| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        });

        let container = Container {
            name: CONTAINER_NAME.into(),
            image: Some(c.image.clone()),
            args: Some(vec!["--manifest".into(), request.manifest_uri.clone()]),
            env: Some(env_vars),
            env_from,
            volume_mounts: Some(vec![VolumeMount {
                name: VOLUME_NAME.into(),
                mount_path: c.base_path.clone(),
                ..VolumeMount::default()
            }]),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity("250m".into())),
                    ("memory".to_string(), Quantity("128Mi".into())),
                ])),
                limits: Some(BTreeMap::from([(
                    "memory".to_string(),
                    Quantity("512Mi".into()),
                )])),
                ..ResourceRequirements::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    // chown of copied files and writing into directories owned by others.
                    add: Some(vec!["CHOWN".into(), "DAC_OVERRIDE".into(), "FOWNER".into()]),
                }),
                ..SecurityContext::default()
            }),
            ..Container::default()
        };

        Ok(Job {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(c.namespace.clone()),
                labels: Some(labels.clone()),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                backoff_limit: Some(c.backoff_limit),
                ttl_seconds_after_finished: Some(c.ttl_seconds_after_finished),
                pod_failure_policy: Some(pod_failure_policy()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        service_account_name: c.service_account.clone(),
                        // The worker never talks to the Kubernetes API.
                        automount_service_account_token: Some(false),
                        security_context: Some(PodSecurityContext {
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".into(),
                                ..SeccompProfile::default()
                            }),
                            ..PodSecurityContext::default()
                        }),
                        containers: vec![container],
                        volumes: Some(vec![volume]),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        })
    }

    fn api_error(&self, action: &str, name: &str, error: ::kube::Error) -> Error {
        let message = match &error {
            ::kube::Error::Api(status) => format!(
                "{action} Job {name} in namespace {}: {} ({}, HTTP {})",
                self.config.namespace,
                if status.message.is_empty() {
                    "no message"
                } else {
                    &status.message
                },
                if status.reason.is_empty() {
                    "no reason"
                } else {
                    &status.reason
                },
                status.code
            ),
            other => format!(
                "{action} Job {name} in namespace {}: {other}",
                self.config.namespace
            ),
        };
        Error::upstream("kubernetes", message)
    }
}

/// Exit code 2 of the worker means nothing could be attempted (configuration, unreadable
/// report): retrying can't help, so the Job fails at once. A pod evicted or preempted
/// (`DisruptionTarget`) doesn't use up `backoffLimit`: the next pod resumes the copy. Exit 1
/// (some objects failed) is retried: a rerun skips what is done and retries the rest.
fn pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER_NAME.into()),
                    operator: "In".into(),
                    values: vec![2],
                }),
                ..PodFailurePolicyRule::default()
            },
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                }]),
                ..PodFailurePolicyRule::default()
            },
        ],
    }
}

fn host_path(path: &str) -> Volume {
    Volume {
        name: VOLUME_NAME.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some("Directory".into()),
        }),
        ..Volume::default()
    }
}

fn annotation<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata
        .annotations
        .as_ref()?
        .get(&format!("{LABEL_PREFIX}/{key}"))
        .map(String::as_str)
}

/// The phase of a Job from its status: conditions first (they are final), then pod counts.
pub fn copy_status(job: &Job) -> CopyStatus {
    let status = job.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let count = |n: Option<i32>| n.unwrap_or(0).max(0) as u32;
    let active = count(status.active);
    let (phase, message) = if holds("Complete").is_some() {
        (CopyPhase::Succeeded, None)
    } else if let Some(failed) = holds("Failed") {
        let message = match (&failed.reason, &failed.message) {
            (Some(r), Some(m)) => Some(format!("{r}: {m}")),
            (r, m) => r.clone().or_else(|| m.clone()),
        };
        (CopyPhase::Failed, message)
    } else if active > 0 {
        (CopyPhase::Running, None)
    } else {
        (CopyPhase::Pending, None)
    };
    CopyStatus {
        name: job.metadata.name.clone().unwrap_or_default(),
        phase,
        active,
        succeeded: count(status.succeeded),
        failed: count(status.failed),
        message,
    }
}

#[async_trait]
impl Dispatcher for KubeDispatcher {
    fn target(&self, job_id: &str) -> DispatchTarget {
        DispatchTarget {
            name: job_name(job_id),
            namespace: Some(self.config.namespace.clone()),
        }
    }

    async fn dispatch(&self, request: &DispatchRequest) -> Result<DispatchStatus> {
        let job = self.job_for(request)?;
        let name = job.metadata.name.clone().unwrap_or_default();
        match self.jobs.create(&PostParams::default(), &job).await {
            Ok(_) => {
                tracing::info!(job_id = %request.job_id, kube_job = %name, namespace = %self.config.namespace, "copy Job created");
                Ok(DispatchStatus {
                    name,
                    created: true,
                })
            }
            Err(::kube::Error::Api(status)) if status.code == 409 => {
                // Already dispatched: make sure it is ours, not a name clash.
                let existing = self
                    .jobs
                    .get(&name)
                    .await
                    .map_err(|e| self.api_error("reading existing", &name, e))?;
                match annotation(&existing, "job-id") {
                    Some(owner) if owner == request.job_id => {
                        tracing::info!(job_id = %request.job_id, kube_job = %name, "copy Job already dispatched");
                        Ok(DispatchStatus {
                            name,
                            created: false,
                        })
                    }
                    other => Err(Error::conflict(
                        "kube_job_name_taken",
                        format!(
                            "Job {name} in namespace {} belongs to {}, not to restore job {}",
                            self.config.namespace,
                            other.map_or("something else".to_string(), |o| format!("job {o}")),
                            request.job_id
                        ),
                    )),
                }
            }
            Err(e) => {
                let error = self.api_error("creating", &name, e);
                tracing::error!(job_id = %request.job_id, kube_job = %name, error = %error, "copy Job not created");
                Err(error)
            }
        }
    }

    async fn status(&self, job_id: &str) -> Result<Option<CopyStatus>> {
        let name = job_name(job_id);
        match self.jobs.get_opt(&name).await {
            Ok(Some(job)) => Ok(Some(copy_status(&job))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.api_error("reading", &name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("proj 42/ü"), "proj_42");
        assert_eq!(label_value("42"), "42");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn config_is_off_without_namespace_and_defaults_it_when_empty() {
        assert_eq!(KubeDispatchConfig::from_lookup(lookup(&[])).unwrap(), None);
        let config = KubeDispatchConfig::from_lookup(lookup(&[
            ("KUBE_NAMESPACE", ""),
            ("WORKER_IMAGE", "w:1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.namespace, "default");
        assert_eq!(config.image, "w:1");
        assert_eq!(config.volume, AssetsVolume::RequestLocalBase);
    }

    #[test]
    fn config_errors_name_the_variable() {
        let err = KubeDispatchConfig::from_lookup(lookup(&[("KUBE_NAMESPACE", "media")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("WORKER_IMAGE"), "{err}");
        let err = KubeDispatchConfig::from_lookup(lookup(&[
            ("KUBE_NAMESPACE", "media"),
            ("WORKER_IMAGE", "w"),
            ("WORKER_CONCURRENCY", "many"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("WORKER_CONCURRENCY"), "{err}");
        let err = KubeDispatchConfig::from_lookup(lookup(&[
            ("KUBE_NAMESPACE", "media"),
            ("WORKER_IMAGE", "w"),
            ("WORKER_PVC", "a"),
            ("WORKER_HOST_PATH", "/b"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("WORKER_PVC"), "{err}");
        assert!(KubeDispatchConfig::from_lookup(lookup(&[
            ("KUBE_NAMESPACE", "Bad_NS"),
            ("WORKER_IMAGE", "w"),
        ]))
        .is_err());
    }

    #[test]
    fn status_follows_conditions_then_counts() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "restore-1"},
            "status": {"failed": 4, "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit"}]}
        }))
        .unwrap();
        let status = copy_status(&job);
        assert_eq!(status.phase, CopyPhase::Failed);
        assert_eq!(status.failed, 4);
        assert_eq!(
            status.message.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "restore-1"}, "status": {"active": 1}
        }))
        .unwrap();
        assert_eq!(copy_status(&job).phase, CopyPhase::Running);
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "restore-1"},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(copy_status(&job).phase, CopyPhase::Succeeded);
        assert_eq!(copy_status(&Job::default()).phase, CopyPhase::Pending);
    }
}
