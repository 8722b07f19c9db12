//! `restore-local demo`: a guided tour of a restore against the local emulator, through the
//! same shared library the Lambdas use: seed a bucket of archived media, list and classify it,
//! estimate the cost, issue the restores through [`S3ObjectStore`], follow them with HeadObject
//! until every copy is readable, and print a summary. It refuses to run without
//! `AWS_ENDPOINT_URL`, so it can never touch a real account.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use shared::adapters::s3::S3ObjectStore;
use shared::config::{aws_sdk_config, vars, Config};
use shared::domain::cost::{format_usd, PriceList, Usage, BYTES_PER_GB};
use shared::domain::object::{ListedObject, RestoreOutcome};
use shared::domain::storage::{Classification, RestorePolicy, RetrievalTier, StorageClass};
use shared::ports::ObjectStore;
use shared::{Error, Result};

/// Seconds moto takes to "restore" an object in the demo (its state-manager transition).
const RESTORE_SECONDS: u64 = 2;
/// Give up polling after this long.
const POLL_LIMIT: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;
const PREFIX: &str = "demo-project/";

/// The sample project: (key under the prefix, S3 storage class, size in bytes).
const SAMPLES: &[(&str, &str, usize)] = &[
    ("Assets/", "STANDARD", 0),
    ("Assets/rushes/day 1/A001_C001.mov", "GLACIER", 3 * MIB),
    ("Assets/rushes/day 1/A001_C002.mov", "GLACIER", 2 * MIB),
    ("Assets/rushes/day 2/B001_C001.mxf", "DEEP_ARCHIVE", 4 * MIB),
    ("Assets/audio/mix-v3.wav", "DEEP_ARCHIVE", MIB),
    ("Assets/proxies/A001_C001.mp4", "STANDARD", 256 * 1024),
    ("Assets/graphics/title-card.png", "GLACIER_IR", 128 * 1024),
];

struct Options {
    tier: RetrievalTier,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut tier = RetrievalTier::Standard;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--tier" => {
                    let value = args.next().map(String::as_str).unwrap_or_default();
                    tier = RetrievalTier::parse(value).ok_or_else(|| {
                        Error::validation(
                            "unknown_tier",
                            format!("--tier {value:?}: expected Expedited, Standard or Bulk"),
                        )
                    })?;
                }
                other => {
                    return Err(Error::validation(
                        "invalid_argument",
                        format!("demo: unknown argument {other:?} (usage: demo [--tier Expedited|Standard|Bulk])"),
                    ))
                }
            }
        }
        Ok(Options { tier })
    }
}

/// Credentials and region the emulator accepts, used when the environment has none.
fn emulator_default(name: &str) -> Option<String> {
    match name {
        vars::AWS_DEFAULT_REGION => Some("us-east-1".into()),
        vars::AWS_ACCESS_KEY_ID | vars::AWS_SECRET_ACCESS_KEY => Some("testing".into()),
        _ => None,
    }
}

/// Runs the demo; `args` are the words after `demo`.
pub async fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let config = Config::from_lookup(
        |name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| emulator_default(name))
        },
        &[vars::AWS_ENDPOINT_URL],
    )?;
    let endpoint = config.endpoint_url.clone().unwrap_or_default();
    let sdk = aws_sdk_config(&config).await;
    let store = S3ObjectStore::from_sdk_config(&sdk);
    let started = Instant::now();

    println!("Glacier restore demo against the emulator at {endpoint}");
    let timed = match moto_restore_transition(&endpoint, Some(RESTORE_SECONDS)) {
        Ok(()) => true,
        Err(e) => {
            println!("  (no moto state manager: restores complete at once; {e})");
            false
        }
    };

    // 1. A bucket of archived media.
    let bucket = format!(
        "restore-demo-{}",
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    seed(&store, &bucket).await?;
    println!(
        "\n1. Seeded s3://{bucket}/{PREFIX} with {} objects",
        SAMPLES.len()
    );
    if timed {
        // moto's restore clock starts when an object is created (DESIGN §8).
        tokio::time::sleep(Duration::from_secs(RESTORE_SECONDS) + Duration::from_millis(200)).await;
    }

    // 2. List and classify, as the planner does.
    let listed = list_all(&store, &bucket).await?;
    let policy = RestorePolicy {
        days: config.restore_days,
    };
    println!(
        "\n2. Listed and classified for {} retrieval ({} days):",
        options.tier, policy.days
    );
    println!("   {:<40} {:<14} {:>10}  action", "key", "class", "bytes");
    let mut to_restore = Vec::new();
    let mut usage = Usage::default();
    let mut readable = 0;
    for object in &listed {
        if object.key.ends_with('/') {
            println!(
                "   {:<40} {:<14} {:>10}  skipped (folder key)",
                short(&object.key),
                object.storage_class.as_s3(),
                object.size
            );
            continue;
        }
        let classification = object.classify(options.tier, policy);
        let action = match &classification {
            Classification::Readable => {
                readable += 1;
                "readable, no restore".to_owned()
            }
            Classification::AlreadyRestored(_) => "restored copy present".to_owned(),
            Classification::Pending => "restore already running".to_owned(),
            Classification::Restore(plan) => {
                usage.add_object(&object.storage_class, object.size);
                match plan.fallback {
                    Some(fallback) => format!("restore ({})", fallback.note()),
                    None => format!("restore ({})", plan.params.tier),
                }
            }
        };
        println!(
            "   {:<40} {:<14} {:>10}  {action}",
            short(&object.key),
            object.storage_class.as_s3(),
            object.size
        );
        if let Classification::Restore(plan) = classification {
            to_restore.push((object.clone(), plan));
        }
    }

    // 3. Cost.
    let prices = PriceList::select(Some(&config.price_list))?;
    let estimate = prices.estimate(&usage, options.tier);
    println!(
        "\n3. Cost estimate ({} price list) for {} objects, {} bytes:",
        estimate.price_list,
        usage.total_objects(),
        usage.total_bytes()
    );
    for tier in &estimate.tiers {
        let mark = if tier.tier == options.tier {
            "  <- chosen"
        } else {
            ""
        };
        println!("   {:<10} ${:>8}{mark}", tier.tier.to_string(), tier.usd);
    }
    let mut scale = Usage::default();
    scale.add(&StorageClass::Glacier, 1000, 1024 * BYTES_PER_GB);
    let seed = PriceList::seed().estimate(&scale, options.tier);
    let aws = PriceList::aws().estimate(&scale, options.tier);
    println!(
        "   For scale, 1000 GLACIER objects totalling 1 TiB (seed prices / today's AWS prices):"
    );
    for (s, a) in seed.tiers.iter().zip(&aws.tiers) {
        println!(
            "   {:<10} ${:>8} / ${:>8}",
            s.tier.to_string(),
            s.usd,
            a.usd
        );
    }

    // 4. Restore requests through the ObjectStore port.
    println!("\n4. RestoreObject for {} objects:", to_restore.len());
    let mut pending = Vec::new();
    let mut restored_now = 0;
    for (object, plan) in &to_restore {
        let target = object.object_ref();
        let mut outcome = store.request_restore(&target, plan.params).await?;
        if outcome == RestoreOutcome::ExpeditedUnavailable {
            if let Some(fallback) = plan.fallback_for_expedited_unavailable() {
                outcome = store.request_restore(&target, fallback.params).await?;
            }
        }
        println!("   {:<40} {outcome:?}", short(&object.key));
        match outcome {
            RestoreOutcome::Started | RestoreOutcome::InProgress => pending.push(object.clone()),
            RestoreOutcome::AlreadyRestored => restored_now += 1,
            RestoreOutcome::NotNeeded => readable += 1,
            RestoreOutcome::ExpeditedUnavailable => {
                return Err(Error::upstream(
                    "s3",
                    format!("no Expedited capacity for {}", object.key),
                ))
            }
        }
    }

    // 5. Follow the restores with HeadObject (the sweeper's view; in AWS the completion event
    //    arrives instead).
    println!("\n5. Waiting for restores (HeadObject every 500 ms):");
    let poll_started = Instant::now();
    let mut done = Vec::new();
    let mut last_reported = 0;
    while !pending.is_empty() {
        if poll_started.elapsed() > POLL_LIMIT {
            return Err(Error::Internal(format!(
                "{} restores still running after {POLL_LIMIT:?}",
                pending.len()
            )));
        }
        let mut still = Vec::new();
        for object in pending {
            let head = store.head(&object.object_ref()).await?;
            match head.restore {
                Some(status) if !status.ongoing => {
                    let expiry = status
                        .expiry
                        .map(|e| e.date().to_string())
                        .unwrap_or_else(|| "unknown".into());
                    println!(
                        "   {:>5.1} s  {:<40} restored, readable until {expiry}",
                        poll_started.elapsed().as_secs_f64(),
                        short(&object.key)
                    );
                    done.push(object);
                }
                _ => still.push(object),
            }
        }
        if !still.is_empty() && still.len() != last_reported {
            println!(
                "   {:>5.1} s  {} restore(s) in progress",
                poll_started.elapsed().as_secs_f64(),
                still.len()
            );
            last_reported = still.len();
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    if timed {
        let _ = moto_restore_transition(&endpoint, None);
    }
    let restored = done.len() + restored_now;
    println!(
        "\nSummary: {} objects under s3://{bucket}/{PREFIX}: {restored} restored, {readable} readable without restore; \
         estimated {} cost ${} (chosen tier); {:.1} s.",
        listed.iter().filter(|o| !o.key.ends_with('/')).count(),
        options.tier,
        format_usd(estimate.chosen.cents),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed(store: &S3ObjectStore, bucket: &str) -> Result<()> {
    let s3 = store.client();
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| Error::upstream("s3", format!("CreateBucket {bucket}: {e:?}")))?;
    for (key, class, size) in SAMPLES {
        s3.put_object()
            .bucket(bucket)
            .key(format!("{PREFIX}{key}"))
            .storage_class(aws_sdk_s3::types::StorageClass::from(*class))
            .body(vec![b'.'; *size].into())
            .send()
            .await
            .map_err(|e| Error::upstream("s3", format!("PutObject {key}: {e:?}")))?;
    }
    Ok(())
}

async fn list_all(store: &S3ObjectStore, bucket: &str) -> Result<Vec<ListedObject>> {
    let mut objects = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let page = store
            .list_page(bucket, PREFIX, continuation.as_deref(), 1000)
            .await?;
        objects.extend(page.objects);
        match page.next {
            Some(next) => continuation = Some(next),
            None => return Ok(objects),
        }
    }
}

fn short(key: &str) -> &str {
    key.strip_prefix(PREFIX).unwrap_or(key)
}

/// Sets (or with `None` unsets) moto's timed restore transition, so a restore is visibly in
/// progress for a moment, as in S3, instead of done at once.
fn moto_restore_transition(endpoint: &str, seconds: Option<u64>) -> std::io::Result<()> {
    let (path, body) = match seconds {
        Some(s) => (
            "/moto-api/state-manager/set-transition",
            format!(
                r#"{{"model_name":"s3::keyrestore","transition":{{"progression":"time","seconds":{s}}}}}"#
            ),
        ),
        None => (
            "/moto-api/state-manager/unset-transition",
            r#"{"model_name":"s3::keyrestore"}"#.to_owned(),
        ),
    };
    let address = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("not a plain-http emulator endpoint"))?
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.0 201") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "state manager answered {:?}",
            answer.lines().next().unwrap_or_default()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn tier_defaults_to_standard_and_parses_any_case() {
        assert_eq!(Options::parse(&[]).unwrap().tier, RetrievalTier::Standard);
        assert_eq!(
            Options::parse(&args(&["--tier", "expedited"]))
                .unwrap()
                .tier,
            RetrievalTier::Expedited
        );
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let err = Options::parse(&args(&["--tier", "fast"])).err().unwrap();
        assert_eq!(err.code(), "unknown_tier");
        let err = Options::parse(&args(&["--frobnicate"])).err().unwrap();
        assert!(err.to_string().contains("--frobnicate"));
    }
}
