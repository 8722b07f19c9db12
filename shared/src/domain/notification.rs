//! The texts of the mails the service sends (DESIGN §5 and `POST /notify`): a finished job
//! (completed, completed with errors, failed) and the approval request.
//!
//! Plain text on purpose: it reads the same in every client and through SES and SMTP alike.
//! The texts carry the project link (`PLUTO_PROJECT_URL` + id) and `s3://` locations of the
//! manifest, never presigned URLs, credentials or other secrets: mail is forwarded and archived.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::manifest::{Report, ReportObject};
use super::state::{JobState, ObjectState};
use super::storage::{CompletionWindow, RetrievalTier};

/// Failed objects listed by name in a mail; the rest are counted and left to the report.
pub const MAX_LISTED_FAILURES: usize = 20;

/// Subject and body of one mail; the caller adds the recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailText {
    pub subject: String,
    pub body: String,
}

/// The link to a project in Pluto: `PLUTO_PROJECT_URL` followed by the project id (seed
/// behaviour). Characters outside the URL-safe set in the id are percent-encoded so an odd id
/// cannot change the link's meaning.
pub fn project_link(project_url: &str, project_id: &str) -> String {
    const ID_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{project_url}{}",
        percent_encoding::utf8_percent_encode(project_id, ID_SET)
    )
}

/// Recipients of a job mail: `NOTIFICATION_EMAIL` and the requesting user, trimmed, empty ones
/// dropped and duplicates (case-insensitive) sent once.
pub fn recipients<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for address in addresses {
        let address = address.trim();
        if !address.is_empty() && !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_string());
        }
    }
    out
}

/// Checks mail addresses before anything is sent: at least one, each a bare `local@domain`
/// (no display name, spaces, separators or control characters that could smuggle in more
/// recipients or headers). The mail services check deliverability; this catches bad input early
/// with a clear error.
pub fn validate_recipients(addresses: &[String]) -> crate::Result<()> {
    if addresses.is_empty() {
        return Err(crate::Error::validation(
            "invalid_recipient",
            "a mail needs at least one recipient",
        ));
    }
    for address in addresses {
        let bad = |why: &str| {
            crate::Error::validation(
                "invalid_recipient",
                format!("{:?} is not a mail address: {why}", one_line(address)),
            )
        };
        if address.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        if address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"()[]".contains(c))
        {
            return Err(bad("it contains spaces or separators"));
        }
        match address.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') => {}
            _ => return Err(bad("expected local@domain")),
        }
    }
    Ok(())
}

/// Where the finalizer wrote the manifest files, as `s3://` URIs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestLocation {
    pub csv: String,
    pub report: String,
}

/// The mail for a finished job, worded after its state. `failure_reason` says why a failed
/// job failed (the sweeper's or finalizer's reason); `manifest` is absent when nothing was
/// written (e.g. the job failed before any object came back).
pub fn job_finished(
    report: &Report,
    project_url: &str,
    manifest: Option<&ManifestLocation>,
    failure_reason: Option<&str>,
) -> crate::Result<MailText> {
    let project = one_line(&report.project_id);
    let (subject, opening) = match report.state {
        JobState::Completed => (
            format!("Restore of project {project} completed"),
            "has completed: every file is readable again.".to_string(),
        ),
        JobState::CompletedWithErrors => (
            format!(
                "Restore of project {project} completed with {} failed file(s)",
                report.totals.failed
            ),
            "has finished, but some files could not be restored (listed below).".to_string(),
        ),
        JobState::Failed => (
            format!("Restore of project {project} FAILED"),
            "has failed.".to_string(),
        ),
        JobState::Planning | JobState::Restoring => {
            return Err(crate::Error::Internal(format!(
                "job {} is still {:?}; only finished jobs are mailed",
                report.job_id, report.state
            )))
        }
    };

    let mut body = String::new();
    let _ = writeln!(
        body,
        "Hello,\n\nThe restore of project {project} {opening}\n"
    );
    if report.state == JobState::Failed {
        let reason = failure_reason
            .map(one_line)
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "no reason was recorded".to_string());
        let _ = writeln!(body, "Reason:         {reason}\n");
    }
    let _ = writeln!(body, "Project:        {project}",);
    let _ = writeln!(
        body,
        "Link:           {}",
        project_link(project_url, &report.project_id)
    );
    let _ = writeln!(body, "Job:            {}", one_line(&report.job_id));
    let _ = writeln!(body, "Path (prefix):  {}", one_line(&report.prefix));
    if let Some(base) = &report.local_base {
        let _ = writeln!(body, "Local base:     {}", one_line(base));
    }
    let _ = writeln!(body, "Tier:           {}", report.tier.as_str());
    let totals = &report.totals;
    let _ = writeln!(
        body,
        "Files:          {} (restored {}, already readable {}, failed {})",
        thousands(totals.objects),
        thousands(totals.restored),
        thousands(totals.not_needed),
        thousands(totals.failed)
    );
    let _ = writeln!(body, "Size:           {}", bytes(totals.bytes));
    let _ = writeln!(body, "Estimated cost: {}", dollars(report.cost_cents));
    let _ = writeln!(body, "Started:        {}", when(report.created_at));
    let _ = writeln!(body, "Finished:       {}", when(report.finished_at));
    match earliest_expiry(&report.objects) {
        Some(expiry) => {
            let _ = writeln!(
                body,
                "Available until: {} (earliest expiry of a restored copy; copy the files before then)",
                when(expiry)
            );
        }
        None if totals.restored > 0 => {
            let _ = writeln!(body, "Available until: unknown (see the report)");
        }
        None => {}
    }
    if let Some(manifest) = manifest {
        let _ = writeln!(body, "Manifest (CSV): {}", one_line(&manifest.csv));
        let _ = writeln!(body, "Report (JSON):  {}", one_line(&manifest.report));
    }

    let failures: Vec<&ReportObject> = report
        .objects
        .iter()
        .filter(|o| o.state == ObjectState::Failed)
        .collect();
    if !failures.is_empty() {
        let listed = failures.len().min(MAX_LISTED_FAILURES);
        let _ = writeln!(
            body,
            "\nFailed files ({} of {}):",
            listed,
            thousands(failures.len() as u64)
        );
        for object in &failures[..listed] {
            let error = object.error.as_deref().map(one_line);
            let _ = writeln!(
                body,
                "  - s3://{}/{}: {}",
                one_line(&object.bucket),
                one_line(&object.key),
                error.as_deref().unwrap_or("unknown error")
            );
        }
        if failures.len() > listed {
            let _ = writeln!(
                body,
                "  ... and {} more; the report lists them all.",
                thousands((failures.len() - listed) as u64)
            );
        }
    }
    let _ = write!(body, "\n-- \nGlacier restore service\n");
    Ok(MailText {
        subject: one_line(&subject),
        body,
    })
}

/// What `POST /notify` knows when it asks an approver to allow a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub project_id: String,
    /// The user asking (not allowed to restore directly).
    pub user: String,
    pub path: String,
    /// Files and bytes found by the recent `/stats` call.
    pub objects: u64,
    pub bytes: u64,
    /// Estimates per tier, in the order to show them.
    pub estimates: Vec<TierEstimate>,
}

/// Cost and expected wait of one retrieval tier, as shown in the approval mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEstimate {
    pub tier: RetrievalTier,
    pub cost_cents: u64,
    /// Expected restore time (`storage::expected_job_window`); omitted when unknown.
    pub window: Option<CompletionWindow>,
}

/// The mail asking `NOTIFICATION_EMAIL` to approve a restore.
pub fn approval_request(request: &ApprovalRequest, project_url: &str) -> MailText {
    let project = one_line(&request.project_id);
    let user = one_line(&request.user);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Hello,\n\n{user} asks to restore the archived files of project {project}.\n\
         They are not allowed to start a restore themselves; please review the request.\n"
    );
    let _ = writeln!(body, "Project:        {project}");
    let _ = writeln!(
        body,
        "Link:           {}",
        project_link(project_url, &request.project_id)
    );
    let _ = writeln!(body, "Requested by:   {user}");
    let _ = writeln!(body, "Path:           {}", one_line(&request.path));
    let _ = writeln!(body, "Files:          {}", thousands(request.objects));
    let _ = writeln!(body, "Size:           {}", bytes(request.bytes));
    if !request.estimates.is_empty() {
        let _ = writeln!(body, "\nEstimated cost by retrieval tier:");
        for estimate in &request.estimates {
            let _ = write!(
                body,
                "  {:<10} {:>12}",
                estimate.tier.as_str(),
                dollars(estimate.cost_cents)
            );
            match &estimate.window {
                Some(window) => {
                    let _ = writeln!(body, "   (ready in {})", window_text(window));
                }
                None => body.push('\n'),
            }
        }
    }
    let _ = write!(
        body,
        "\nTo approve, start the restore for project {project} from Pluto or the restore API \
         as an allowed user.\n\n-- \nGlacier restore service\n"
    );
    MailText {
        subject: one_line(&format!(
            "Approval needed: restore of project {project} requested by {user}"
        )),
        body,
    }
}

/// Earliest expiry of a restored copy: the date by which everything must be copied.
fn earliest_expiry(objects: &[ReportObject]) -> Option<OffsetDateTime> {
    objects
        .iter()
        .filter(|o| o.state == ObjectState::Restored)
        .filter_map(|o| o.expiry)
        .min()
}

/// `3-5 hours`, `1-5 minutes`, `up to 48 hours`.
fn window_text(window: &CompletionWindow) -> String {
    let (min, max) = (window.min().as_secs(), window.max().as_secs());
    let (unit, div) = if max < 3600 {
        ("minutes", 60)
    } else {
        ("hours", 3600)
    };
    if min == 0 {
        format!("up to {} {unit}", max / div)
    } else {
        format!("{}-{} {unit}", min / div, max / div)
    }
}

/// Control characters (line breaks above all) would let a key or id forge mail lines or
/// headers; they become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let first = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let mut out = digits[..first].to_string();
    for group in digits.as_bytes()[first..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// Cents as US dollars: `4072` → `$40.72`.
fn dollars(cents: u64) -> String {
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}

/// Bytes in binary units with two decimals, and the exact count.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && n >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{} B", thousands(n));
    }
    // Two decimals, rounded half up, in integers to stay exact.
    let hundredths = (u128::from(n) * 100 + u128::from(scale) / 2) / u128::from(scale);
    format!(
        "{}.{:02} {} ({} bytes)",
        thousands((hundredths / 100) as u64),
        hundredths % 100,
        UNITS[unit],
        thousands(n)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::ReportTotals;
    use crate::domain::storage::{expected_window, StorageClass};
    use time::macros::datetime;

    const URL: &str = "https://pluto.example.com/project/";

    fn object(key: &str, state: ObjectState) -> ReportObject {
        ReportObject {
            bucket: "pluto-assets".into(),
            key: key.into(),
            version_id: None,
            size: 512,
            storage_class: StorageClass::Glacier,
            state,
            expiry: None,
            error: None,
        }
    }

    fn report(state: JobState, objects: Vec<ReportObject>) -> Report {
        let count = |s| objects.iter().filter(|o| o.state == s).count() as u64;
        Report {
            job_id: "job-7".into(),
            project_id: "42".into(),
            prefix: "Project 42/".into(),
            local_base: Some("/srv/media/Project 42/Assets/".into()),
            tier: RetrievalTier::Bulk,
            state,
            created_at: datetime!(2026-11-25 01:00 UTC),
            finished_at: datetime!(2026-11-25 09:30 UTC),
            totals: ReportTotals {
                objects: objects.len() as u64,
                bytes: 1_099_511_627_776,
                restored: count(ObjectState::Restored),
                not_needed: count(ObjectState::NotNeeded),
                failed: count(ObjectState::Failed),
            },
            cost_cents: 1029,
            objects,
        }
    }

    fn manifest() -> ManifestLocation {
        ManifestLocation {
            csv: "s3://pluto-manifests/job-7/manifest.csv".into(),
            report: "s3://pluto-manifests/job-7/report.json".into(),
        }
    }

    #[test]
    fn completed_mail_names_everything_the_team_needs() {
        let mut a = object("Project 42/a.mov", ObjectState::Restored);
        a.expiry = Some(datetime!(2026-12-03 00:00 UTC));
        let mut b = object("Project 42/b.mov", ObjectState::Restored);
        b.expiry = Some(datetime!(2026-12-02 12:00 UTC));
        let c = object("Project 42/c.mov", ObjectState::NotNeeded);
        let mail = job_finished(
            &report(JobState::Completed, vec![a, b, c]),
            URL,
            Some(&manifest()),
            None,
        )
        .unwrap();
        assert_eq!(mail.subject, "Restore of project 42 completed");
        for expected in [
            "Link:           https://pluto.example.com/project/42\n",
            "Job:            job-7\n",
            "Tier:           Bulk\n",
            "Files:          3 (restored 2, already readable 1, failed 0)\n",
            "Size:           1.00 TiB (1,099,511,627,776 bytes)\n",
            "Estimated cost: $10.29\n",
            "Available until: 2026-12-02 12:00 UTC",
            "Manifest (CSV): s3://pluto-manifests/job-7/manifest.csv\n",
            "Report (JSON):  s3://pluto-manifests/job-7/report.json\n",
            "Local base:     /srv/media/Project 42/Assets/\n",
        ] {
            assert!(
                mail.body.contains(expected),
                "missing {expected:?} in\n{}",
                mail.body
            );
        }
        assert!(!mail.body.contains("Failed files"));
        assert!(!mail.body.contains("Reason"));
    }

    #[test]
    fn completed_with_errors_lists_failures_and_caps_the_list() {
        let mut objects = vec![object("ok.mov", ObjectState::Restored)];
        for i in 0..25 {
            let mut o = object(&format!("bad {i}.mov"), ObjectState::Failed);
            o.error = Some(format!("AccessDenied\nBcc: evil@example.com {i}"));
            objects.push(o);
        }
        let mail = job_finished(
            &report(JobState::CompletedWithErrors, objects),
            URL,
            Some(&manifest()),
            None,
        )
        .unwrap();
        assert_eq!(
            mail.subject,
            "Restore of project 42 completed with 25 failed file(s)"
        );
        assert!(mail.body.contains("Failed files (20 of 25):"));
        assert!(mail
            .body
            .contains("  - s3://pluto-assets/bad 0.mov: AccessDenied Bcc: evil@example.com 0\n"));
        assert!(mail.body.contains("bad 19.mov"));
        assert!(!mail.body.contains("bad 20.mov"));
        assert!(mail
            .body
            .contains("... and 5 more; the report lists them all."));
        assert!(
            !mail.body.contains("\nBcc:"),
            "no forged line from an error text"
        );
    }

    #[test]
    fn failed_job_mail_carries_the_reason() {
        let mail = job_finished(
            &report(JobState::Failed, vec![object("x", ObjectState::Requested)]),
            URL,
            None,
            Some("restore requests still pending after 48 h"),
        )
        .unwrap();
        assert_eq!(mail.subject, "Restore of project 42 FAILED");
        assert!(mail
            .body
            .contains("Reason:         restore requests still pending after 48 h\n"));
        assert!(!mail.body.contains("Manifest"));
        let mail = job_finished(&report(JobState::Failed, vec![]), URL, None, None).unwrap();
        assert!(mail.body.contains("Reason:         no reason was recorded"));
    }

    #[test]
    fn unfinished_jobs_are_not_mailed() {
        for state in [JobState::Planning, JobState::Restoring] {
            assert!(job_finished(&report(state, vec![]), URL, None, None).is_err());
        }
    }

    #[test]
    fn subject_cannot_carry_header_lines() {
        let mut r = report(JobState::Completed, vec![]);
        r.project_id = "42\r\nBcc: evil@example.com".into();
        let mail = job_finished(&r, URL, None, None).unwrap();
        assert!(!mail.subject.contains(['\r', '\n']));
        assert!(mail
            .body
            .contains("Link:           https://pluto.example.com/project/42%0D%0ABcc%3A%20evil%40example.com\n"));
    }

    #[test]
    fn approval_request_text() {
        let mail = approval_request(
            &ApprovalRequest {
                project_id: "42".into(),
                user: "editor@example.com".into(),
                path: "/srv/media/Project 42/Assets/Rushes".into(),
                objects: 1000,
                bytes: 1_099_511_627_776,
                estimates: vec![
                    TierEstimate {
                        tier: RetrievalTier::Standard,
                        cost_cents: 1029,
                        window: expected_window(
                            &StorageClass::Glacier,
                            None,
                            RetrievalTier::Standard,
                        ),
                    },
                    TierEstimate {
                        tier: RetrievalTier::Bulk,
                        cost_cents: 259,
                        window: expected_window(
                            &StorageClass::DeepArchive,
                            None,
                            RetrievalTier::Bulk,
                        ),
                    },
                    TierEstimate {
                        tier: RetrievalTier::Expedited,
                        cost_cents: 4072,
                        window: None,
                    },
                ],
            },
            URL,
        );
        assert_eq!(
            mail.subject,
            "Approval needed: restore of project 42 requested by editor@example.com"
        );
        for expected in [
            "editor@example.com asks to restore the archived files of project 42.",
            "Link:           https://pluto.example.com/project/42\n",
            "Path:           /srv/media/Project 42/Assets/Rushes\n",
            "Files:          1,000\n",
            "Size:           1.00 TiB (1,099,511,627,776 bytes)\n",
            "  Standard         $10.29   (ready in 3-5 hours)\n",
            "  Bulk              $2.59   (ready in up to 48 hours)\n",
            "  Expedited        $40.72\n",
        ] {
            assert!(
                mail.body.contains(expected),
                "missing {expected:?} in\n{}",
                mail.body
            );
        }
    }

    #[test]
    fn recipient_validation() {
        let ok = |a: &str| validate_recipients(&[a.to_string()]).is_ok();
        assert!(ok("ops@example.com"));
        assert!(ok("first.last+tag@sub.example.co.uk"));
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a@b@c",
            "ops@example.com.",
            "Ops <ops@example.com>",
            "a@example.com,b@example.com",
            "ops@example.com\r\nBcc: evil@example.com",
        ] {
            assert!(!ok(bad), "{bad:?} accepted");
        }
        let err = validate_recipients(&[]).unwrap_err();
        assert_eq!(err.code(), "invalid_recipient");
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn recipients_are_deduplicated_and_trimmed() {
        assert_eq!(
            recipients([
                "ops@example.com",
                " Ops@Example.com ",
                "",
                "editor@example.com"
            ]),
            vec!["ops@example.com", "editor@example.com"]
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(dollars(4072), "$40.72");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB (1,536 bytes)");
        assert_eq!(bytes(1024 * 1024 - 1), "1,024.00 KiB (1,048,575 bytes)");
        assert_eq!(
            project_link(URL, "42"),
            "https://pluto.example.com/project/42"
        );
    }
}
