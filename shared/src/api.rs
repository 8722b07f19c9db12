//! The HTTP API (DESIGN §3) as one transport-free handler: `http::Request<Vec<u8>>` in,
//! `http::Response<String>` out, so the Lambda (`lambda_http`) and the local server
//! (`restore-local serve`) serve exactly the same routes, checks and answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::config::Config;
use crate::domain::cost::{CostEstimate, PriceList, BYTES_PER_GB};
use crate::domain::fanout::{Fanout, FanoutSettings, RunOutcome};
use crate::domain::job::{CopyDispatch, CreateOutcome, Job, JobView, StatsRecord};
use crate::domain::plan;
use crate::domain::request::{PermissionsRequest, RestoreRequest, StatsRequest, MAX_BODY_BYTES};
use crate::domain::storage::RestorePolicy;
use crate::ports::{JobStore, Mail, Mailer, ObjectStore};
use crate::{Error, Result};

/// How long a `/stats` answer lets `/notify` go ahead (the seed's 5 minutes).
pub const STATS_VALIDITY: Duration = Duration::from_secs(300);
/// Default time the API spends fanning out before it answers 202 (API Gateway allows 29 s).
pub const DEFAULT_PLAN_BUDGET: Duration = Duration::from_secs(3);

/// What the handler needs besides its ports.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `ASSET_BUCKET_LIST`, in order.
    pub buckets: Vec<String>,
    /// `ALLOWED_USERS`, lowercased.
    pub allowed_users: Vec<String>,
    /// `NOTIFICATION_EMAIL`: who approves restores asked through `/notify`.
    pub approvers: Vec<String>,
    /// `PLUTO_PROJECT_URL`: link prefix of a project in mails.
    pub project_url: Option<String>,
    pub prices: PriceList,
    pub policy: RestorePolicy,
    /// Time spent fanning out inside the request before answering (`API_PLAN_BUDGET_MS`).
    pub plan_budget: Duration,
    pub stats_validity: Duration,
    /// Keep fanning out in a background task after answering (the local server, which has no
    /// table stream); the Lambda leaves that to `restore-fanout`.
    pub background_fanout: bool,
}

/// The API handler. Build once at init; `handle` is called per request.
pub struct Api {
    jobs: Arc<dyn JobStore>,
    objects: Arc<dyn ObjectStore>,
    mailer: Arc<dyn Mailer>,
    fanout: Arc<Fanout>,
    settings: ApiSettings,
}

const JSON: &str = "application/json";
const RESTORE_V1: &str = "/api/v1/restore";

/// Which route a path is, and which methods it takes (for 405 + `Allow`).
enum Route<'a> {
    Health,
    RestoreV1,
    JobStatus(&'a str),
    LegacyRestore,
    Stats,
    Notify,
    Permissions,
}

impl Route<'_> {
    fn allowed(&self) -> Method {
        match self {
            Route::Health | Route::JobStatus(_) => Method::GET,
            _ => Method::POST,
        }
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    Some(match path {
        "/health" => Route::Health,
        RESTORE_V1 => Route::RestoreV1,
        "/restore" => Route::LegacyRestore,
        "/stats" => Route::Stats,
        "/notify" => Route::Notify,
        "/permissions" => Route::Permissions,
        other => {
            let id = other.strip_prefix("/api/v1/restore/")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            Route::JobStatus(id)
        }
    })
}

/// An error answer: the service error plus the HTTP status chosen for it.
struct Failure {
    status: StatusCode,
    error: Error,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match &error {
            // Unreadable or mistyped bodies are 400; well-formed bodies with values the service
            // can't act on (unknown tier, a path that maps to no safe prefix) are 422.
            Error::Validation { code, .. } if matches!(*code, "unknown_tier" | "invalid_path") => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            other => StatusCode::from_u16(other.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        Failure { status, error }
    }
}

fn failure(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
    let message = message.into();
    let error = match status.as_u16() {
        403 => Error::forbidden(code, message),
        404 => Error::not_found(code, message),
        409 => Error::conflict(code, message),
        _ => Error::validation(code, message),
    };
    Failure { status, error }
}

type Answer = std::result::Result<Response<String>, Failure>;

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<String> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut response = Response::new(text);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

fn error_response(failure: &Failure) -> Response<String> {
    json_response(
        failure.status,
        &json!({"error": {"code": failure.error.code(), "message": failure.error.to_string()}}),
    )
}

impl Api {
    pub fn new(
        jobs: Arc<dyn JobStore>,
        objects: Arc<dyn ObjectStore>,
        mailer: Arc<dyn Mailer>,
        fanout: Arc<Fanout>,
        settings: ApiSettings,
    ) -> Self {
        Api {
            jobs,
            objects,
            mailer,
            fanout,
            settings,
        }
    }

    /// Serves one request. Never fails: every error becomes a JSON error answer.
    pub async fn handle(&self, request: Request<Vec<u8>>) -> Response<String> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let response = match self.dispatch(request).await {
            Ok(response) => response,
            Err(failure) => {
                if failure.status.is_server_error() {
                    tracing::error!(%method, %path, error = %failure.error, "request failed");
                }
                error_response(&failure)
            }
        };
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    async fn dispatch(&self, request: Request<Vec<u8>>) -> Answer {
        let Some(route) = route(request.uri().path()) else {
            return Err(failure(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route {} {}", request.method(), request.uri().path()),
            ));
        };
        let allowed = route.allowed();
        if request.method() != allowed {
            let mut response = error_response(&failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed on {}; use {allowed}",
                    request.method(),
                    request.uri().path()
                ),
            ));
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_str(allowed.as_str()).expect("method name"),
            );
            return Ok(response);
        }
        let body = if allowed == Method::POST {
            check_body(&request)?
        } else {
            &[][..]
        };
        match route {
            Route::Health => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
            Route::RestoreV1 => self.restore(body, false).await,
            Route::LegacyRestore => self.restore(body, true).await,
            Route::JobStatus(id) => self.status(id).await,
            Route::Stats => self.stats(body).await,
            Route::Notify => self.notify(body).await,
            Route::Permissions => {
                let request = PermissionsRequest::from_json(body)?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"allowed": self.allowed(&request.user)}),
                ))
            }
        }
    }

    fn allowed(&self, user: &str) -> bool {
        let user = user.trim().to_lowercase();
        self.settings.allowed_users.contains(&user)
    }

    async fn restore(&self, body: &[u8], legacy: bool) -> Answer {
        let request = RestoreRequest::from_json(body)?;
        if !self.allowed(&request.user) {
            return Err(failure(
                StatusCode::FORBIDDEN,
                "user_not_allowed",
                format!(
                    "{} may not restore directly; ask an approver (POST /notify)",
                    request.user
                ),
            ));
        }
        let mapping = request.path_mapping()?;
        if let Some(active) = self.jobs.active_job(&request.project_id).await? {
            if let Some(view) = self.jobs.get_job(&active).await? {
                // A lock left by a finished job is cleared by `create_job` below.
                if !view.job.state.is_terminal() {
                    return Ok(self.job_answer(StatusCode::OK, &view, legacy));
                }
            }
        }
        let probe = plan::probe(
            self.objects.as_ref(),
            &self.settings.buckets,
            &mapping.prefix,
        )
        .await?;
        if !probe.any {
            return Err(no_objects(&mapping.prefix));
        }
        let job = Job::new(
            uuid::Uuid::now_v7().to_string(),
            request.project_id.clone(),
            request.user.clone(),
            request.path.clone(),
            mapping.prefix.clone(),
            mapping.local_base.clone(),
            request.tier,
            self.settings.buckets.clone(),
            plan::shards_for(probe),
            OffsetDateTime::now_utc(),
        );
        let span =
            tracing::info_span!("restore", job_id = %job.job_id, project_id = %job.project_id);
        self.start(job, legacy).instrument(span).await
    }

    /// Records a planned job (or finds the project's active one) and fans out within the
    /// request's budget.
    async fn start(&self, job: Job, legacy: bool) -> Answer {
        match self.jobs.create_job(&job).await? {
            CreateOutcome::Existing(active) => {
                let view = self.jobs.get_job(&active).await?.ok_or_else(|| {
                    Error::conflict("job_conflict", "the project's active job vanished; retry")
                })?;
                return Ok(self.job_answer(StatusCode::OK, &view, legacy));
            }
            CreateOutcome::Created => {
                tracing::info!(job_id = %job.job_id, prefix = %job.prefix, tier = %job.tier, "job created")
            }
        }
        // Fan out within the budget; a big job continues in `restore-fanout`.
        let deadline = Instant::now() + self.settings.plan_budget;
        let outcome = match self.fanout.run(&job.job_id, deadline).await {
            Ok(outcome) => {
                tracing::info!(job_id = %job.job_id, ?outcome, "fan-out in request");
                Some(outcome)
            }
            Err(err) => {
                // The job is recorded; the fan-out function picks it up from the stream.
                tracing::error!(job_id = %job.job_id, error = %err, "fan-out in request failed");
                None
            }
        };
        if self.settings.background_fanout
            && !matches!(
                outcome,
                Some(RunOutcome::ListingDone | RunOutcome::NothingToDo)
            )
        {
            let fanout = self.fanout.clone();
            let job_id = job.job_id.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(24 * 3600);
                match fanout.drive(&job_id, deadline).await {
                    Ok(outcome) => tracing::info!(%job_id, ?outcome, "background fan-out"),
                    Err(err) => tracing::error!(%job_id, error = %err, "background fan-out failed"),
                }
            });
        }
        let view = self
            .jobs
            .get_job(&job.job_id)
            .await?
            .ok_or_else(|| Error::Internal("job vanished after creation".into()))?;
        Ok(self.job_answer(StatusCode::ACCEPTED, &view, legacy))
    }

    fn job_answer(&self, status: StatusCode, view: &JobView, legacy: bool) -> Response<String> {
        let link = format!("{RESTORE_V1}/{}", view.job.job_id);
        let mut response = if legacy {
            let message = if status == StatusCode::OK {
                "a restore of this project is already in progress"
            } else {
                "restore started"
            };
            json_response(
                status,
                &json!({
                    "message": message,
                    "jobId": view.job.job_id,
                    "fileCount": view.job.totals.objects,
                    "totalSize": view.job.totals.bytes,
                }),
            )
        } else {
            json_response(status, &self.status_body(view))
        };
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
    }

    async fn status(&self, id: &str) -> Answer {
        let not_found = || {
            let shown: String = id.chars().take(MAX_JOB_ID_BYTES).collect();
            let more = if shown.len() < id.len() { "…" } else { "" };
            failure(
                StatusCode::NOT_FOUND,
                "job_not_found",
                format!("no restore job {shown}{more}"),
            )
        };
        // Not a job id this service hands out: no store call (DynamoDB refuses keys over
        // 2,048 bytes with a 500-class error) and no 4 KiB echo in the answer.
        if !plausible_job_id(id) {
            return Err(not_found());
        }
        let view = self.jobs.get_job(id).await?.ok_or_else(not_found)?;
        Ok(json_response(StatusCode::OK, &self.status_body(&view)))
    }

    /// The job as `GET /api/v1/restore/{id}` shows it.
    pub fn status_body(&self, view: &JobView) -> JobStatus {
        let job = &view.job;
        let totals = &job.totals;
        let estimate = plan::estimate(&self.settings.prices, totals, job.tier);
        let window = plan::window(totals, job.tier).map(|w| ExpectedCompletion {
            earliest: job.created_at + time::Duration::seconds(w.min_secs as i64),
            latest: job.created_at + time::Duration::seconds(w.max_secs as i64),
        });
        JobStatus {
            id: job.job_id.clone(),
            project_id: job.project_id.clone(),
            user: job.user.clone(),
            path: job.path.clone(),
            prefix: job.prefix.clone(),
            local_base: job.local_base.clone(),
            retrieval_type: job.tier.as_str().to_string(),
            status: job.state.as_str().to_string(),
            listing_done: job.cursor.listing_done,
            objects: ObjectCounts {
                total: totals.objects,
                to_restore: totals.to_restore,
                requested: totals.requested,
                pending: view.pending(),
                restored: view.restored(),
                not_needed: view.not_needed(),
                failed: view.settled.failed,
            },
            bytes: ByteCounts {
                total: totals.bytes,
                to_restore: totals.bytes_to_restore,
                restored: view.settled.restored_bytes,
            },
            percent: view.percent(),
            estimate,
            notes: job.notes.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            expected_completion: window,
            manifest: job.manifest.clone(),
            error: job.error.clone(),
            copy: job.copy.clone(),
            link: format!("{RESTORE_V1}/{}", job.job_id),
        }
    }

    async fn stats(&self, body: &[u8]) -> Answer {
        let request = StatsRequest::from_json(body)?;
        let mapping = request.path_mapping()?;
        let summary = plan::summarize(
            self.objects.as_ref(),
            &self.settings.buckets,
            &mapping.prefix,
            self.settings.policy,
        )
        .await?;
        if summary.objects == 0 {
            return Err(no_objects(&mapping.prefix));
        }
        let standard = self.settings.prices.estimate_tier(
            &summary.usage,
            crate::domain::storage::RetrievalTier::Standard,
        );
        let bulk = self
            .settings
            .prices
            .estimate_tier(&summary.usage, crate::domain::storage::RetrievalTier::Bulk);
        let record = StatsRecord {
            project_id: request.project_id.clone(),
            prefix: mapping.prefix.clone(),
            number_of_files: summary.objects,
            total_bytes: summary.bytes,
            standard_cost_cents: standard.cents,
            bulk_cost_cents: bulk.cents,
            expires_at: OffsetDateTime::now_utc() + self.settings.stats_validity,
        };
        self.jobs.put_stats(&record).await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "numberOfFiles": summary.objects,
                "totalSize": summary.bytes as f64 / BYTES_PER_GB as f64,
                "standardRetrievalCost": standard.dollars(),
                "bulkRetrievalCost": bulk.dollars(),
            }),
        ))
    }

    async fn notify(&self, body: &[u8]) -> Answer {
        let target = StatsRequest::from_json(body)?;
        let user = PermissionsRequest::from_json(body)?.user;
        let mapping = target.path_mapping()?;
        let stats = self
            .jobs
            .get_stats(&target.project_id, &mapping.prefix)
            .await?
            .filter(|s| s.expires_at > OffsetDateTime::now_utc())
            .ok_or_else(|| {
                failure(
                    StatusCode::CONFLICT,
                    "stats_required",
                    format!(
                        "no /stats answer for project {} and path {} in the last {} minutes; \
                         call POST /stats first",
                        target.project_id,
                        target.path,
                        self.settings.stats_validity.as_secs() / 60
                    ),
                )
            })?;
        if self.settings.approvers.is_empty() {
            return Err(Error::Config(
                "NOTIFICATION_EMAIL is not set: nobody to ask for approval".into(),
            )
            .into());
        }
        let link = self
            .settings
            .project_url
            .as_ref()
            .map(|url| format!("{url}{}", target.project_id))
            .unwrap_or_default();
        let mail = Mail {
            to: self.settings.approvers.clone(),
            subject: format!(
                "Restore approval requested for project {}",
                target.project_id
            ),
            body: format!(
                "{user} asks to restore archived assets of project {id}.\n\n\
                 Path: {path}\nFiles: {files}\nTotal size: {gib:.2} GiB\n\
                 Estimated cost: Standard ${standard}, Bulk ${bulk}\n{link}\n\n\
                 An allowed user can start it with POST /api/v1/restore.\n",
                id = target.project_id,
                path = target.path,
                files = stats.number_of_files,
                gib = stats.total_bytes as f64 / BYTES_PER_GB as f64,
                standard = crate::domain::cost::format_usd(stats.standard_cost_cents),
                bulk = crate::domain::cost::format_usd(stats.bulk_cost_cents),
            ),
        };
        self.mailer.send(&mail).await?;
        tracing::info!(project_id = %target.project_id, "approval requested");
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "message": "approval request sent",
                "recipients": mail.to.len(),
            }),
        ))
    }

    /// Continues a job's fan-out until `deadline` (the `restore-fanout` function's work).
    pub async fn continue_fanout(&self, job_id: &str, deadline: Instant) -> Result<RunOutcome> {
        self.fanout.drive(job_id, deadline).await
    }
}

/// Extra settings of the API and fan-out beyond [`Config`] (all optional):
/// `API_PLAN_BUDGET_MS` (default 3000), `FANOUT_LEASE_SECONDS` (120), `FANOUT_PAGE_SIZE` (1000).
pub mod vars {
    pub const API_PLAN_BUDGET_MS: &str = "API_PLAN_BUDGET_MS";
    pub const FANOUT_LEASE_SECONDS: &str = "FANOUT_LEASE_SECONDS";
    pub const FANOUT_PAGE_SIZE: &str = "FANOUT_PAGE_SIZE";
}

fn number_var(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64> {
    match lookup(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{name} must be a number from 1 to {max}, got {v:?}"
                ))
            }),
    }
}

/// Fan-out settings from the configuration.
pub fn fanout_settings(
    config: &Config,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<FanoutSettings> {
    Ok(FanoutSettings {
        page_size: number_var(lookup, vars::FANOUT_PAGE_SIZE, 1000, 1000)? as i32,
        concurrency: config.restore_concurrency,
        rate_limit: config.restore_rate_limit,
        lease: Duration::from_secs(number_var(lookup, vars::FANOUT_LEASE_SECONDS, 120, 900)?),
        policy: RestorePolicy {
            days: config.restore_days,
        },
        ..FanoutSettings::default()
    })
}

/// The production wiring shared by the Lambda and `restore-local serve`: S3, DynamoDB
/// (`JOBS_TABLE`), the configured mailer (SES, or SMTP when `SMTP_HOST` is set).
pub struct Wiring {
    pub api: Api,
    pub fanout: Arc<Fanout>,
    pub jobs: Arc<crate::adapters::dynamodb::DynamoJobStore>,
}

impl Wiring {
    /// Builds everything once at init. `lookup` reads the environment.
    pub fn new(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
        background_fanout: bool,
    ) -> Result<Wiring> {
        let (objects, jobs, fanout) = Self::fanout_parts(config, sdk, lookup)?;
        let mailer = crate::adapters::ses::mailer_from_lookup(sdk, lookup)?;
        let settings = ApiSettings {
            buckets: config.asset_buckets.clone(),
            allowed_users: config.allowed_users.clone(),
            approvers: config.notification_emails.clone(),
            project_url: config.pluto_project_url.clone(),
            prices: PriceList::select(Some(&config.price_list))?,
            policy: RestorePolicy {
                days: config.restore_days,
            },
            plan_budget: Duration::from_millis(number_var(
                lookup,
                vars::API_PLAN_BUDGET_MS,
                DEFAULT_PLAN_BUDGET.as_millis() as u64,
                25_000,
            )?),
            stats_validity: STATS_VALIDITY,
            background_fanout,
        };
        let api = Api::new(jobs.clone(), objects, mailer, fanout.clone(), settings);
        Ok(Wiring { api, fanout, jobs })
    }

    /// Only the fan-out (for `restore-fanout`, which sends no mail).
    pub fn fanout_only(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<Fanout>> {
        Ok(Self::fanout_parts(config, sdk, lookup)?.2)
    }

    #[allow(clippy::type_complexity)]
    fn fanout_parts(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(
        Arc<dyn ObjectStore>,
        Arc<crate::adapters::dynamodb::DynamoJobStore>,
        Arc<Fanout>,
    )> {
        let objects: Arc<dyn ObjectStore> =
            Arc::new(crate::adapters::s3::S3ObjectStore::from_sdk_config(sdk));
        let jobs = Arc::new(crate::adapters::dynamodb::DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.jobs_table.clone(),
        ));
        let fanout = Arc::new(Fanout::new(
            objects.clone(),
            jobs.clone(),
            fanout_settings(config, lookup)?,
        ));
        Ok((objects, jobs, fanout))
    }
}

fn no_objects(prefix: &str) -> Failure {
    failure(
        StatusCode::NOT_FOUND,
        "no_objects",
        format!("no objects found in any bucket under prefix {prefix}"),
    )
}

/// Size and content-type checks of a POST body (413, 415).
/// Longest job id looked up; the API hands out UUIDs (36 characters).
const MAX_JOB_ID_BYTES: usize = 64;

/// Whether `id` can be a job id: short, ASCII letters, digits, `-` and `_` only.
fn plausible_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_JOB_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_body(request: &Request<Vec<u8>>) -> std::result::Result<&[u8], Failure> {
    let body = request.body().as_slice();
    if body.len() > MAX_BODY_BYTES {
        return Err(failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        return Err(failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, got {content_type:?}"),
        ));
    }
    Ok(body)
}

/// `GET /api/v1/restore/{id}` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub id: String,
    pub project_id: String,
    pub user: String,
    pub path: String,
    pub prefix: String,
    pub local_base: Option<String>,
    pub retrieval_type: String,
    /// planning, restoring, completed, completed_with_errors, failed.
    pub status: String,
    /// Every bucket is listed (counts below are final).
    pub listing_done: bool,
    pub objects: ObjectCounts,
    pub bytes: ByteCounts,
    pub percent: f64,
    pub estimate: CostEstimate,
    pub notes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub expected_completion: Option<ExpectedCompletion>,
    pub manifest: Option<String>,
    pub error: Option<String>,
    /// The on-premises copy: the Kubernetes Job the finalizer dispatched (name, namespace,
    /// state, when), or the API server's error that prevented it. Absent until the finalizer
    /// tried (and always without `KUBE_NAMESPACE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyDispatch>,
    /// Where to poll.
    pub link: String,
}

/// Object counts per state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    pub total: u64,
    pub to_restore: u64,
    pub requested: u64,
    pub pending: u64,
    pub restored: u64,
    pub not_needed: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ByteCounts {
    pub total: u64,
    pub to_restore: u64,
    pub restored: u64,
}

/// When the restore should be done, from the tier and storage classes.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedCompletion {
    #[serde(with = "time::serde::rfc3339")]
    pub earliest: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub latest: OffsetDateTime,
}
