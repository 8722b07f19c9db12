//! The kube shim against a loopback HTTP server speaking the Kubernetes Jobs API
//! (`/apis/batch/v1/namespaces/{ns}/jobs[/{name}]`, real Job and Status JSON); the last test
//! runs it from the finalizer (job store, manifests and mail on the emulator) and reads the
//! dispatch back through `GET /api/v1/restore/{id}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use shared::adapters::kube::{job_name, AssetsVolume, KubeDispatchConfig, KubeDispatcher};
use shared::ports::{CopyPhase, DispatchRequest, Dispatcher};
use shared::Error;

/// A canned failure the fake answers every request with.
#[derive(Clone)]
enum Failure {
    Status(u16, &'static str, &'static str),
    Text(u16, &'static str),
}

#[derive(Default)]
struct State {
    /// (namespace, name) → stored Job.
    jobs: HashMap<(String, String), Value>,
    /// Every request: method, path, JSON body.
    requests: Vec<(String, String, Option<Value>)>,
    failure: Option<Failure>,
}

/// In-process fake of the Jobs API of a Kubernetes API server.
#[derive(Clone)]
struct FakeApi {
    state: Arc<Mutex<State>>,
    url: String,
}

impl FakeApi {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeApi {
            state: Arc::default(),
            url,
        };
        let server = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let fake = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let fake = fake.clone();
                        async move { Ok::<_, Infallible>(fake.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        fake
    }

    fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn fail_with(&self, failure: Failure) {
        self.state.lock().unwrap().failure = Some(failure);
    }

    fn recover(&self) {
        self.state.lock().unwrap().failure = None;
    }

    fn requests(&self) -> Vec<(String, String, Option<Value>)> {
        self.state.lock().unwrap().requests.clone()
    }

    fn jobs(&self) -> usize {
        self.state.lock().unwrap().jobs.len()
    }

    fn set_job(&self, namespace: &str, job: Value) {
        let name = job["metadata"]["name"].as_str().unwrap().to_string();
        self.state
            .lock()
            .unwrap()
            .jobs
            .insert((namespace.to_string(), name), job);
    }

    fn job(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .jobs
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let body: Option<Value> = serde_json::from_slice(&body).ok();
        let mut state = self.state.lock().unwrap();
        state
            .requests
            .push((method.to_string(), path.clone(), body.clone()));
        match state.failure.clone() {
            Some(Failure::Status(code, reason, message)) => {
                return respond(code, status(code, reason, message, None))
            }
            Some(Failure::Text(code, text)) => {
                return Response::builder()
                    .status(code)
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from(text)))
                    .unwrap()
            }
            None => {}
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::POST, ["apis", "batch", "v1", "namespaces", ns, "jobs"]) => {
                let mut job = body.unwrap_or_default();
                let Some(name) = job["metadata"]["name"].as_str().map(String::from) else {
                    return respond(
                        422,
                        status(
                            422,
                            "Invalid",
                            "Job.batch is invalid: metadata.name: Required value",
                            None,
                        ),
                    );
                };
                let key = (ns.to_string(), name.clone());
                if state.jobs.contains_key(&key) {
                    let message = format!("jobs.batch \"{name}\" already exists");
                    return respond(409, status(409, "AlreadyExists", &message, Some(&name)));
                }
                job["metadata"]["namespace"] = json!(ns);
                job["metadata"]["uid"] = json!(format!("uid-{name}"));
                job["metadata"]["resourceVersion"] = json!("1");
                job["metadata"]["creationTimestamp"] = json!("2026-11-25T04:00:00Z");
                job["status"] = json!({});
                state.jobs.insert(key, job.clone());
                respond(201, job)
            }
            (&Method::GET, ["apis", "batch", "v1", "namespaces", ns, "jobs", name]) => {
                match state.jobs.get(&(ns.to_string(), name.to_string())) {
                    Some(job) => respond(200, job.clone()),
                    None => {
                        let message = format!("jobs.batch \"{name}\" not found");
                        respond(404, status(404, "NotFound", &message, Some(name)))
                    }
                }
            }
            _ => respond(
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    None,
                ),
            ),
        }
    }
}

fn status(code: u16, reason: &str, message: &str, name: Option<&str>) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    if let Some(name) = name {
        status["details"] = json!({"name": name, "group": "batch", "kind": "jobs"});
    }
    status
}

fn respond(code: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The environment of a finalizer with the shim on, including AWS keys that must never reach
/// the Job.
fn config() -> KubeDispatchConfig {
    let vars: HashMap<&str, &str> = HashMap::from([
        ("KUBE_NAMESPACE", "media"),
        ("WORKER_IMAGE", "registry.example/restore-worker:1.2.3"),
        ("BASE_PATH", "/srv/assets"),
        ("WORKER_PVC", "project-assets"),
        ("WORKER_AWS_SECRET", "restore-worker-aws"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID1234"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN"),
        ("WORKER_CONCURRENCY", "16"),
        ("WORKER_TTL_SECONDS", "3600"),
        ("WORKER_BACKOFF_LIMIT", "2"),
        ("FILE_OWNER_UID", "1500"),
        ("FILE_OWNER_GID", "1600"),
        ("WORKER_CHECKSUM", "true"),
    ]);
    KubeDispatchConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
        .unwrap()
        .unwrap()
}

fn request(job_id: &str) -> DispatchRequest {
    DispatchRequest {
        job_id: job_id.to_string(),
        project_id: "4711".to_string(),
        manifest_uri: format!("s3://manifests/{job_id}/report.json"),
        local_base: "/srv/media/Projects/4711/Assets/".to_string(),
    }
}

fn env_map(container: &Value) -> HashMap<String, String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e.get("valueFrom").is_none(), "unexpected valueFrom in {e}");
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn dispatch_creates_the_job_the_worker_needs() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), config());
    let job_id = "01JD7ZQ8X4M2";
    let status = dispatcher.dispatch(&request(job_id)).await.unwrap();
    assert!(status.created);
    assert_eq!(status.name, job_name(job_id));
    assert!(status.name.starts_with("restore-01jd7zq8x4m2"));
    assert!(status.name.len() <= 63);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let (method, path, body) = &requests[0];
    assert_eq!(method, "POST");
    assert_eq!(path, "/apis/batch/v1/namespaces/media/jobs");
    let job = body.clone().expect("JSON body");
    let text = job.to_string();
    for secret in [
        "AKIAEXAMPLEKEYID1234",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "FQoGZXIvYXdzEXAMPLETOKEN",
    ] {
        assert!(!text.contains(secret), "secret leaked into the Job: {text}");
    }
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], status.name.as_str());
    assert_eq!(job["metadata"]["namespace"], "media");
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["glacier-restore/project-id"], "4711");
    assert_eq!(labels["glacier-restore/job-id"], job_id);
    assert_eq!(labels["app.kubernetes.io/name"], "restore-worker");
    assert_eq!(
        job["metadata"]["annotations"]["glacier-restore/job-id"],
        job_id
    );

    let spec = &job["spec"];
    assert_eq!(spec["ttlSecondsAfterFinished"], 3600);
    assert_eq!(spec["backoffLimit"], 2);
    assert_eq!(
        spec["podFailurePolicy"]["rules"][0],
        json!({"action": "FailJob", "onExitCodes": {
            "containerName": "restore-worker", "operator": "In", "values": [2]}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(
        spec["template"]["metadata"]["labels"]["glacier-restore/project-id"],
        "4711"
    );
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], "registry.example/restore-worker:1.2.3");
    assert_eq!(
        container["args"],
        json!(["--manifest", format!("s3://manifests/{job_id}/report.json")])
    );
    let env = env_map(container);
    assert_eq!(
        env["MANIFEST_URI"],
        format!("s3://manifests/{job_id}/report.json")
    );
    assert_eq!(env["JOB_ID"], job_id);
    assert_eq!(env["BASE_PATH"], "/srv/assets");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["WORKER_CONCURRENCY"], "16");
    assert_eq!(env["FILE_OWNER_UID"], "1500");
    assert_eq!(env["FILE_OWNER_GID"], "1600");
    assert_eq!(env["WORKER_CHECKSUM"], "true");
    for name in env.keys() {
        let upper = name.to_ascii_uppercase();
        assert!(
            !["SECRET", "ACCESS_KEY", "TOKEN", "PASSWORD"]
                .iter()
                .any(|s| upper.contains(s)),
            "credential-like variable {name} in plain env"
        );
    }
    assert_eq!(
        container["envFrom"],
        json!([{"secretRef": {"name": "restore-worker-aws", "optional": false}}])
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "assets", "mountPath": "/srv/assets"}])
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "assets", "persistentVolumeClaim": {"claimName": "project-assets", "readOnly": false}}])
    );
    assert_eq!(fake.jobs(), 1);
}

#[tokio::test]
async fn re_dispatch_is_idempotent() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), config());
    let first = dispatcher.dispatch(&request("job-1")).await.unwrap();
    let second = dispatcher.dispatch(&request("job-1")).await.unwrap();
    assert!(first.created);
    assert!(!second.created, "second dispatch must find the first Job");
    assert_eq!(first.name, second.name);
    assert_eq!(fake.jobs(), 1, "exactly one Job exists");
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.0).collect();
    assert_eq!(methods, ["POST", "POST", "GET"]);

    // Another restore job gets its own Job.
    let other = dispatcher.dispatch(&request("job-2")).await.unwrap();
    assert!(other.created);
    assert_ne!(other.name, first.name);
    assert_eq!(fake.jobs(), 2);
}

#[tokio::test]
async fn a_job_of_the_same_name_owned_by_another_restore_is_a_conflict() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), config());
    let name = job_name("job-9");
    fake.set_job(
        "media",
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": "media",
                            "annotations": {"glacier-restore/job-id": "someone-else"}}}),
    );
    let err = dispatcher.dispatch(&request("job-9")).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("someone-else"), "{err}");
}

#[tokio::test]
async fn api_errors_are_surfaced_with_the_servers_message() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), config());
    fake.fail_with(Failure::Status(
        403,
        "Forbidden",
        "jobs.batch is forbidden: User \"system:serviceaccount:media:restore\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"media\"",
    ));
    let err = dispatcher.dispatch(&request("job-3")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Upstream {
                service: "kubernetes",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("cannot create resource \"jobs\""),
        "{message}"
    );
    assert!(
        message.contains("Forbidden") && message.contains("403"),
        "{message}"
    );
    assert!(message.contains(&job_name("job-3")), "{message}");
    assert_eq!(err.http_status(), 502);

    fake.fail_with(Failure::Status(
        500,
        "InternalError",
        "etcdserver: request timed out",
    ));
    let message = dispatcher
        .dispatch(&request("job-3"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("etcdserver: request timed out") && message.contains("500"),
        "{message}"
    );

    // A proxy in front of the API server answering plain text.
    fake.fail_with(Failure::Text(502, "upstream connect error"));
    let message = dispatcher
        .dispatch(&request("job-3"))
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("upstream connect error"), "{message}");
    assert_eq!(fake.jobs(), 0, "nothing was created");
}

#[tokio::test]
async fn unreachable_api_server_is_an_upstream_error() {
    // Bind and drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let dispatcher = KubeDispatcher::new(kube::Client::try_from(config).unwrap(), self::config());
    let err = dispatcher.dispatch(&request("job-4")).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
}

#[tokio::test]
async fn status_follows_the_job() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), config());
    assert_eq!(dispatcher.status("job-5").await.unwrap(), None);

    let name = dispatcher.dispatch(&request("job-5")).await.unwrap().name;
    let status = dispatcher.status("job-5").await.unwrap().unwrap();
    assert_eq!(status.name, name);
    assert_eq!(status.phase, CopyPhase::Pending);

    let mut job = fake.job("media", &name).unwrap();
    job["status"] = json!({"active": 1, "startTime": "2026-11-25T04:00:05Z"});
    fake.set_job("media", job.clone());
    assert_eq!(
        dispatcher.status("job-5").await.unwrap().unwrap().phase,
        CopyPhase::Running
    );

    job["status"] = json!({"failed": 3, "conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit"}]});
    fake.set_job("media", job.clone());
    let status = dispatcher.status("job-5").await.unwrap().unwrap();
    assert_eq!(status.phase, CopyPhase::Failed);
    assert_eq!(status.failed, 3);
    assert!(status.message.unwrap().contains("BackoffLimitExceeded"));

    job["status"] = json!({"succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"},
        {"type": "Complete", "status": "True"}]});
    fake.set_job("media", job);
    let status = dispatcher.status("job-5").await.unwrap().unwrap();
    assert_eq!(status.phase, CopyPhase::Succeeded);
    assert_eq!(status.succeeded, 1);

    fake.fail_with(Failure::Status(
        403,
        "Forbidden",
        "jobs.batch \"x\" is forbidden",
    ));
    let err = dispatcher.status("job-5").await.unwrap_err();
    assert!(err.to_string().contains("is forbidden"), "{err}");
}

#[tokio::test]
async fn host_path_defaults_to_the_requests_local_base() {
    let fake = FakeApi::start().await;
    let mut config = KubeDispatchConfig::new("default", "restore-worker:dev");
    config.service_account = Some("restore-worker".into());
    assert_eq!(config.volume, AssetsVolume::RequestLocalBase);
    let dispatcher = KubeDispatcher::new(fake.client(), config);
    dispatcher.dispatch(&request("job-6")).await.unwrap();
    let job = fake.requests()[0].2.clone().unwrap();
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{"name": "assets", "hostPath": {"path": "/srv/media/Projects/4711/Assets", "type": "Directory"}}])
    );
    assert_eq!(pod["serviceAccountName"], "restore-worker");
    assert!(pod["containers"][0].get("envFrom").is_none());

    // No volume configured and no usable local base: refused before any API call.
    let mut bad = request("job-7");
    bad.local_base = String::new();
    let err = dispatcher.dispatch(&bad).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("WORKER_PVC"), "{err}");
    let mut bad = request("job-8");
    bad.manifest_uri = "https://example.com/report.json".into();
    assert!(dispatcher.dispatch(&bad).await.is_err());
    assert_eq!(
        fake.requests().len(),
        1,
        "invalid requests never reach the API"
    );
}

/// The settings `k8s/job-template.yaml` documents.
fn template_config() -> KubeDispatchConfig {
    let vars: HashMap<&str, &str> = HashMap::from([
        ("KUBE_NAMESPACE", "default"),
        ("WORKER_IMAGE", "ghcr.io/example/restore-worker:latest"),
        ("BASE_PATH", "/assets"),
        ("WORKER_AWS_SECRET", "restore-worker-aws"),
        ("WORKER_SERVICE_ACCOUNT", "restore-worker"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("WORKER_CONCURRENCY", "8"),
    ]);
    KubeDispatchConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
        .unwrap()
        .unwrap()
}

fn template_request() -> DispatchRequest {
    DispatchRequest {
        job_id: "3f2a8c1e-0d4b-4a59-9a55-0c9d2e7f1b6a".into(),
        project_id: "4711".into(),
        manifest_uri: "s3://restore-manifests/3f2a8c1e-0d4b-4a59-9a55-0c9d2e7f1b6a/report.json"
            .into(),
        local_base: "/srv/media/Projects/4711/Assets/".into(),
    }
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(integration_tests::workspace_root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn the_documented_job_template_is_what_the_shim_sends() {
    let fake = FakeApi::start().await;
    let dispatcher = KubeDispatcher::new(fake.client(), template_config());
    dispatcher.dispatch(&template_request()).await.unwrap();
    let sent = fake.requests()[0].2.clone().unwrap();
    if std::env::var_os("PRINT_JOB").is_some() {
        println!("{}", serde_json::to_string_pretty(&sent).unwrap());
    }
    assert_eq!(yaml("k8s/job-template.yaml"), sent);
}

#[test]
fn the_role_allows_exactly_what_the_shim_needs() {
    let role = yaml("k8s/job-creator-role.yaml");
    assert_eq!(role["kind"], "Role");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["batch"], "resources": ["jobs"],
                "verbs": ["create", "get", "list", "watch", "delete"]}])
    );
    let binding = yaml("k8s/job-creator-rolebinding.yaml");
    assert_eq!(binding["kind"], "RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
}

/// `GET /api/v1/restore/{id}` through the API handler, on the emulator's job store.
async fn get_restore(api: &shared::api::Api, job_id: &str) -> Value {
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("/api/v1/restore/{job_id}"))
        .body(Vec::new())
        .unwrap();
    let response = api.handle(request).await;
    assert_eq!(response.status(), 200, "{}", response.body());
    serde_json::from_str(response.body()).unwrap()
}

#[tokio::test]
async fn the_finalizers_dispatch_shows_in_get_restore() {
    use integration_tests::{
        aws_config, job_store, restoring_job, s3_client, sesv2_client, unique_name, verify_sender,
    };
    use shared::adapters::s3::S3ObjectStore;
    use shared::adapters::ses::SesMailer;
    use shared::api::{Api, ApiSettings};
    use shared::domain::completion::{Completion, CompletionSettings, MARKER_DISPATCH};
    use shared::domain::cost::PriceList;
    use shared::domain::fanout::{Fanout, FanoutSettings};
    use shared::domain::job::Settlement;
    use shared::domain::state::ObjectState;
    use shared::domain::storage::RestorePolicy;
    use shared::ports::{JobStore, Mailer};

    let fake = FakeApi::start().await;
    let dispatcher = Arc::new(KubeDispatcher::new(fake.client(), config()));
    let s3 = s3_client().await;
    let manifests = unique_name("manifests");
    s3.create_bucket().bucket(&manifests).send().await.unwrap();
    let sender = format!("{}@restore.example.com", unique_name("kube"));
    verify_sender(&sender).await;
    let mailer: Arc<dyn Mailer> = Arc::new(SesMailer::new(sesv2_client().await, &sender).unwrap());
    let store = Arc::new(job_store().await);
    let objects = Arc::new(S3ObjectStore::from_sdk_config(&aws_config().await));
    let completion = Completion::new(
        store.clone(),
        objects.clone(),
        Some(mailer.clone()),
        Some(dispatcher),
        CompletionSettings::new(&manifests, PriceList::seed()),
    );
    let fanout = Arc::new(Fanout::new(
        objects.clone(),
        store.clone(),
        FanoutSettings::default(),
    ));
    let api = Api::new(
        store.clone(),
        objects,
        mailer,
        fanout,
        ApiSettings {
            buckets: vec!["assets".into()],
            allowed_users: vec![],
            approvers: vec![],
            project_url: None,
            prices: PriceList::seed(),
            policy: RestorePolicy::default(),
            plan_budget: std::time::Duration::from_secs(1),
            stats_validity: std::time::Duration::from_secs(60),
            background_fanout: false,
        },
    );
    // A restore job whose only object is restored: the finalizer's next call finishes it.
    let job_id = unique_name("Job");
    restoring_job(
        store.as_ref(),
        &job_id,
        "4711",
        "ed@example.com",
        "assets",
        &[("p/a.mov", 5)],
    )
    .await;
    let object = store
        .list_objects(&job_id, None, 10)
        .await
        .unwrap()
        .objects
        .remove(0);
    let restored = Settlement {
        state: ObjectState::Restored,
        expiry: None,
        error: None,
    };
    assert!(store.settle(&object, &restored).await.unwrap());
    let before = get_restore(&api, &job_id).await;
    assert!(
        before.get("copy").is_none(),
        "no copy before the finalizer: {before}"
    );

    // The API server refuses: the job shows the Job's name and the server's answer.
    fake.fail_with(Failure::Status(
        403,
        "Forbidden",
        "jobs.batch is forbidden: User \"system:serviceaccount:media:restore\" cannot create resource \"jobs\"",
    ));
    let err = completion.finalize(&job_id).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let refused = get_restore(&api, &job_id).await;
    let copy = &refused["copy"];
    assert_eq!(refused["status"], "completed");
    assert_eq!(copy["state"], "failed", "{refused}");
    assert_eq!(copy["jobName"], job_name(&job_id));
    assert_eq!(copy["namespace"], "media");
    assert_eq!(copy["dispatchedAt"], Value::Null);
    let error = copy["error"].as_str().unwrap();
    assert!(
        error.contains("cannot create resource") && error.contains("403"),
        "{error}"
    );
    assert_eq!(fake.jobs(), 0);
    // A retry failing the same way leaves the record (and so the table stream) alone.
    completion.finalize(&job_id).await.unwrap_err();
    let retried = get_restore(&api, &job_id).await;
    assert_eq!(retried["copy"], refused["copy"]);

    // The next retry dispatches: the same name, now dispatched.
    fake.recover();
    completion.finalize(&job_id).await.unwrap();
    let dispatched = get_restore(&api, &job_id).await;
    let copy = &dispatched["copy"];
    assert_eq!(copy["state"], "dispatched", "{dispatched}");
    assert_eq!(copy["jobName"], job_name(&job_id));
    assert_eq!(copy["created"], true);
    assert_eq!(copy["error"], Value::Null);
    assert!(copy["dispatchedAt"].is_string());
    assert!(fake.job("media", &job_name(&job_id)).is_some());

    // A crash after the create but before the marker: the re-dispatch gets 409 and keeps it.
    store.clear_marker(&job_id, MARKER_DISPATCH).await.unwrap();
    completion.finalize(&job_id).await.unwrap();
    let again = get_restore(&api, &job_id).await;
    assert_eq!(again["copy"]["jobName"], job_name(&job_id));
    assert_eq!(again["copy"]["state"], "dispatched");
    assert_eq!(again["copy"]["created"], false, "found the first Job (409)");
    assert_eq!(fake.jobs(), 1, "still one Job");
    let posts = fake
        .requests()
        .iter()
        .filter(|(method, _, _)| method == "POST")
        .count();
    assert_eq!(posts, 4, "refused twice, created, 409");

    // The answer's `copy` has exactly the fields openapi.yaml documents, all required.
    let schema = &yaml("openapi.yaml")["components"]["schemas"]["JobStatus"]["properties"]["copy"];
    let mut documented: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut sent: Vec<&str> = again["copy"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort_unstable();
    required.sort_unstable();
    sent.sort_unstable();
    assert_eq!(sent, documented);
    assert_eq!(required, documented);
}
