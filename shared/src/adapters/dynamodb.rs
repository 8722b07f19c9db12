//! [`JobStore`] on one DynamoDB table (single-table design, see README "Job store").
//!
//! Items (`pk` / `sk`, strings):
//! - `JOB#<id>` / `META`: the job, its fan-out cursor, planned totals, lease, notes, markers.
//! - `JOB#<id>` / `COUNT#<nnnn>`: settled counters of one shard, and `applied`: the ids of
//!   the settlement receipts already added and not yet deleted.
//! - `JOB#<id>` / `SETTLE#<receipt>`: a batch settlement in progress: the objects it may
//!   settle, its counter shard and its lease (see `settle_with_receipt`).
//! - `JOB#<id>` / `OBJ#<key>`: one object (read by key: the tally knows the active jobs).
//! - `PROJECT#<id>` / `ACTIVE`: the project's active job (idempotent POST) and its scope, with
//!   `gsi1pk = ACTIVE` (sparse GSI `active-jobs`: only these items are in it).
//! - `STATS#<project>` / `PATH#<prefix>`: a `/stats` answer with `ttl` and `expires_at`.
//! - `EARLY#<bucket>#<key>` / `EVENT`: a completion event that came before its object was
//!   recorded, with `ttl` (see `JobStore::put_early_event`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ReturnValue,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};
use time::OffsetDateTime;

use crate::domain::completion::EarlyEvent;
use crate::domain::job::{
    ActiveJob, ClassTotals, CopyDispatch, CreateOutcome, Cursor, Job, JobView, LeaseOutcome,
    ObjectPage, ObjectRecord, PageCommit, PlanTotals, SettledCounts, Settlement, StatsRecord,
};
use crate::domain::state::{JobState, ObjectState};
use crate::domain::storage::{RetrievalTier, StorageClass};
use crate::ports::JobStore;
use crate::{Error, Result};

/// Name of the sparse index that lists the projects' active locks (under [`ACTIVE_INDEX_KEY`]),
/// so the tally and the sweeper find the active jobs with one Query and no Scan.
pub const ACTIVE_JOBS_INDEX: &str = "active-jobs";
/// The index key every active lock carries.
const ACTIVE_INDEX_KEY: &str = "ACTIVE";
/// Objects per settlement receipt (the keys of 100 objects fit one item).
const RECEIPT_BATCH: usize = 100;
/// Fewer objects than this settle in one transaction with their counts: one call instead of
/// a receipt's four, and for so few objects no more write units.
const TRANSACTION_BELOW: usize = 4;
/// A settlement receipt belongs to the call that wrote it this long: far above the longest
/// function timeout (900 s), so only a dead call's receipt is ever finished by another.
const RECEIPT_LEASE: time::Duration = time::Duration::minutes(30);
/// Sort-key prefix of settlement receipts (`SETTLE#<id>`), past `META` so a job's
/// `COUNT#`..`META` range read never sees them.
const RECEIPT_PREFIX: &str = "SETTLE#";
const SERVICE: &str = "dynamodb";
/// DynamoDB's limit on keys per BatchGetItem.
const BATCH: usize = 100;
/// Single-item writes (or write batches) in flight while recording or marking a page.
const WRITE_CONCURRENCY: usize = 16;
/// DynamoDB's limit on items per BatchWriteItem.
const WRITE_BATCH: usize = 25;

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB job store. Cheap to clone (the SDK client is an `Arc`).
#[derive(Clone, Debug)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoJobStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (keys, `active-jobs` GSI, stream, TTL) unless it exists: for the local
    /// runner and tests; production tables come from the SAM template.
    pub async fn ensure_table(&self) -> Result<()> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(internal)
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(internal)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(ACTIVE_JOBS_INDEX)
            .key_schema(key("gsi1pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(internal)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .global_secondary_indexes(gsi)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(())
            }
            Err(err) => return Err(upstream(err)),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await
            .map_err(upstream)?;
        Ok(())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxResult> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(TxResult::Done),
                Err(err) => {
                    let Some(
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(canceled),
                    ) = err.as_service_error()
                    else {
                        return Err(upstream(err));
                    };
                    let codes: Vec<String> = canceled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                        return Ok(TxResult::ConditionFailed(codes));
                    }
                    // TransactionConflict / throttling: another writer touched an item; retry.
                    attempt += 1;
                    if attempt >= 6 {
                        return Err(Error::upstream(
                            SERVICE,
                            format!("transaction canceled: {codes:?}"),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
            }
        }
    }

    /// An UpdateItem of the job's META item, to which each caller adds its expressions.
    fn update_meta(&self, job_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s("META"))
    }

    async fn get_meta(&self, job_id: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s("META"))
            .consistent_read(true)
            .send()
            .await
            .map_err(upstream)?;
        Ok(out.item)
    }

    async fn put_object(&self, item: Item) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        condition_held(result)
    }

    async fn mark_one(&self, object: ObjectRecord) -> Result<bool> {
        self.send_update(mark_update(&self.table, &object)?).await
    }

    /// One BatchWriteItem, resending what DynamoDB left unprocessed (throttling) with backoff.
    async fn batch_write(&self, batch: Vec<WriteRequest>) -> Result<()> {
        let mut pending = Some(HashMap::from([(self.table.clone(), batch)]));
        let mut attempt = 0u32;
        while let Some(items) = pending.take().filter(|m| m.values().any(|v| !v.is_empty())) {
            if attempt > 0 {
                if attempt > 8 {
                    return Err(Error::upstream(
                        SERVICE,
                        "BatchWriteItem left items unprocessed after 8 retries",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
            }
            attempt += 1;
            let out = self
                .client
                .batch_write_item()
                .set_request_items(Some(items))
                .send()
                .await
                .map_err(upstream)?;
            pending = out.unprocessed_items;
        }
        Ok(())
    }

    /// The conditional write that settles one object (still pending, same bucket): the gate
    /// that makes each object settle once. With a receipt, the object names it (`settled_by`),
    /// so [`JobStore::finish_settlements`] can tell which objects that receipt won.
    fn settle_update(
        &self,
        object: &ObjectRecord,
        settlement: &Settlement,
        receipt: Option<&str>,
    ) -> Result<Update> {
        if !matches!(
            settlement.state,
            ObjectState::Restored | ObjectState::NotNeeded | ObjectState::Failed
        ) {
            return Err(Error::Internal(format!(
                "settle to non-final state {:?}",
                settlement.state
            )));
        }
        let mut set = vec!["#s = :state"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(&object.job_id)))
            .key("sk", s(obj_sk(&object.key)))
            .condition_expression("#s IN (:planned, :requested) AND #bk = :bucket")
            .expression_attribute_names("#s", "state")
            .expression_attribute_names("#bk", "bucket")
            .expression_attribute_values(":state", s(object_state_name(settlement.state)))
            .expression_attribute_values(":planned", s("planned"))
            .expression_attribute_values(":requested", s("requested"))
            .expression_attribute_values(":bucket", s(&object.bucket));
        if let Some(expiry) = settlement.expiry {
            set.push("#x = :expiry");
            update = update
                .expression_attribute_names("#x", "expiry")
                .expression_attribute_values(":expiry", s(ts(expiry)));
        }
        if let Some(error) = &settlement.error {
            set.push("#e = :error");
            update = update
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":error", s(error));
        }
        if let Some(receipt) = receipt {
            set.push("settled_by = :receipt");
            update = update.expression_attribute_values(":receipt", s(receipt));
        }
        update
            .update_expression(format!("SET {}", set.join(", ")))
            .build()
            .map_err(internal)
    }

    /// Adds settled counts to one counter shard of a job. With a receipt, only once: the
    /// receipt id joins the shard's `applied` set in the same write, conditioned on not being
    /// in it yet.
    fn count_update(
        &self,
        job_id: &str,
        shard: u32,
        counts: &SettledCounts,
        receipt: Option<&str>,
    ) -> Result<Update> {
        let mut count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(count_sk(shard)));
        let mut adds = Vec::new();
        for (name, value) in [
            ("restored", counts.restored),
            ("restored_bytes", counts.restored_bytes),
            ("not_needed", counts.not_needed),
            ("failed", counts.failed),
        ] {
            if value > 0 {
                let placeholder = format!("#c{}", adds.len());
                adds.push(format!("{placeholder} :v{}", adds.len()));
                count = count
                    .expression_attribute_names(&placeholder, name)
                    .expression_attribute_values(format!(":v{}", adds.len() - 1), n(value));
            }
        }
        if let Some(receipt) = receipt {
            adds.push("applied :receipts".to_string());
            count = count
                .condition_expression("NOT contains(applied, :receipt)")
                .expression_attribute_values(":receipt", s(receipt))
                .expression_attribute_values(":receipts", AttributeValue::Ss(vec![receipt.into()]));
        }
        count
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()
            .map_err(internal)
    }

    /// Sends one prepared conditional update; false when its condition did not hold.
    async fn send_update(&self, update: Update) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        condition_held(result)
    }

    /// Settles a few objects of one job and adds their counts in ONE transaction (one call:
    /// cheaper than a receipt's four for a handful of objects).
    async fn settle_in_transaction(
        &self,
        job_id: &str,
        batch: &[&(ObjectRecord, Settlement)],
    ) -> Result<Vec<bool>> {
        let mut live: Vec<usize> = (0..batch.len()).collect();
        // Each round drops the objects a condition failed for (already settled), so this
        // ends; what is left is settled and counted together.
        while !live.is_empty() {
            let mut writes = Vec::with_capacity(live.len() + 1);
            let mut counts = SettledCounts::default();
            for &i in &live {
                let (object, settlement) = batch[i];
                let update = self.settle_update(object, settlement, None)?;
                writes.push(TransactWriteItem::builder().update(update).build());
                counts.count(settlement.state, object.size);
            }
            let count = self.count_update(job_id, batch[live[0]].0.shard, &counts, None)?;
            writes.push(TransactWriteItem::builder().update(count).build());
            match self.transact(writes).await? {
                TxResult::Done => break,
                TxResult::ConditionFailed(codes) => {
                    let before = live.len();
                    live = live
                        .into_iter()
                        .zip(&codes)
                        .filter(|(_, code)| *code != "ConditionalCheckFailed")
                        .map(|(i, _)| i)
                        .collect();
                    if live.len() == before {
                        return Err(Error::Internal(format!(
                            "settle transaction canceled without a failed object: {codes:?}"
                        )));
                    }
                }
            }
        }
        let mut done = vec![false; batch.len()];
        live.iter().for_each(|&i| done[i] = true);
        Ok(done)
    }

    /// Settles many objects of one job without a transaction: a receipt item naming them is
    /// written first, then each object's conditional update (marked with the receipt), then
    /// the winners' counts are added once (see [`Self::close_receipt`]). A crash after the
    /// receipt leaves it behind for [`JobStore::finish_settlements`] once its lease is over (an
    /// error ends the lease at once); no object is lost or counted twice.
    async fn settle_with_receipt(
        &self,
        job_id: &str,
        batch: &[&(ObjectRecord, Settlement)],
    ) -> Result<Vec<bool>> {
        let receipt = uuid::Uuid::now_v7().simple().to_string();
        let shard = batch[0].0.shard;
        let lease_until = OffsetDateTime::now_utc() + RECEIPT_LEASE;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(job_pk(job_id)))
            .item("sk", s(receipt_sk(&receipt)))
            .item("shard", n(shard))
            .item(
                "keys",
                AttributeValue::L(batch.iter().map(|(o, _)| s(&o.key)).collect()),
            )
            .item("lease_until", n(lease_until.unix_timestamp()))
            .send()
            .await
            .map_err(upstream)?;
        let settled = async {
            let gates = batch
                .iter()
                .map(|(object, settlement)| self.settle_update(object, settlement, Some(&receipt)))
                .collect::<Result<Vec<_>>>()?;
            let won: Vec<bool> = stream::iter(gates.into_iter().map(|u| self.send_update(u)))
                .buffered(WRITE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            let mut counts = SettledCounts::default();
            for ((object, settlement), won) in batch.iter().zip(&won) {
                if *won {
                    counts.count(settlement.state, object.size);
                }
            }
            self.close_receipt(job_id, shard, &receipt, &counts).await?;
            Ok(won)
        }
        .await;
        if let Err(err) = &settled {
            // This call gives up on the receipt: end its lease, so the next sweep finishes it
            // instead of waiting the lease out (best effort: a crash here leaves the lease).
            let released = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(job_pk(job_id)))
                .key("sk", s(receipt_sk(&receipt)))
                .update_expression("SET lease_until = :released")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":released", n(0u64))
                .send()
                .await;
            tracing::warn!(job_id, receipt = %receipt, error = %err, lease_released = released.is_ok(), "batch settlement stopped; the sweeper finishes it");
        }
        settled
    }

    /// Adds a receipt's counts to its shard (once: a repeat finds the receipt in `applied`),
    /// deletes the receipt, then drops its id from `applied`: no one can apply a receipt that
    /// is gone, so the set only holds receipts in flight. True when this call added them.
    async fn close_receipt(
        &self,
        job_id: &str,
        shard: u32,
        receipt: &str,
        counts: &SettledCounts,
    ) -> Result<bool> {
        // A failed condition: applied before (a retried call, or the crashed owner).
        let added = !counts.is_empty()
            && self
                .send_update(self.count_update(job_id, shard, counts, Some(receipt))?)
                .await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(job_pk(job_id)))
            .key("sk", s(receipt_sk(receipt)))
            .send()
            .await
            .map_err(upstream)?;
        if !counts.is_empty() {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(job_pk(job_id)))
                .key("sk", s(count_sk(shard)))
                .update_expression("DELETE applied :receipts")
                .expression_attribute_values(
                    ":receipts",
                    AttributeValue::Ss(vec![receipt.to_string()]),
                )
                .send()
                .await
                .map_err(upstream)?;
        }
        Ok(added)
    }

    /// The stored items of a job's objects by key (missing ones left out), read consistently.
    async fn object_items(&self, job_id: &str, keys: &[String]) -> Result<HashMap<String, Item>> {
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let items = self
            .batch_get(unique.iter().map(|key| (job_pk(job_id), obj_sk(key))))
            .await?;
        items
            .into_iter()
            .map(|item| Ok((get_s(&item, "key")?, item)))
            .collect()
    }

    /// The items with these `(pk, sk)` keys (missing ones left out; no key twice), read
    /// consistently with BatchGetItem, 100 keys per call, unprocessed keys asked again.
    async fn batch_get(&self, keys: impl Iterator<Item = (String, String)>) -> Result<Vec<Item>> {
        let keys: Vec<(String, String)> = keys.collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                let mut k = Item::new();
                k.insert("pk".into(), s(pk.clone()));
                k.insert("sk".into(), s(sk.clone()));
                request = request.keys(k);
            }
            let mut pending = Some(HashMap::from([(
                self.table.clone(),
                request.build().map_err(internal)?,
            )]));
            let mut attempt = 0u32;
            while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
                attempt += 1;
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(upstream)?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).into_iter().flatten());
                }
                pending = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    async fn release_project(&self, project_id: &str, job_id: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(project_pk(project_id)))
            .key("sk", s("ACTIVE"))
            .condition_expression("job_id = :id")
            .expression_attribute_values(":id", s(job_id))
            .send()
            .await;
        condition_held(result).map(|_| ())
    }
}

enum TxResult {
    Done,
    ConditionFailed(Vec<String>),
}

fn internal(err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("dynamodb request build: {err}"))
}

fn upstream<E, R>(err: SdkError<E, R>) -> Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    Error::upstream(SERVICE, DisplayErrorContext(err))
}

/// Outcome of a conditional write: `true` when it was applied, `false` when its condition
/// did not hold (a lost race or a replay, not an error); any other failure is upstream.
fn condition_held<T, E, R>(result: std::result::Result<T, SdkError<E, R>>) -> Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_conditional(&err) => Ok(false),
        Err(err) => Err(upstream(err)),
    }
}

/// A write conditioned on `attribute_exists(pk)` of the job's META item: a failed condition
/// means there is no such job.
fn job_write_error<E, R>(err: SdkError<E, R>, job_id: &str) -> Error
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if is_conditional(&err) {
        Error::not_found("job_not_found", format!("no job {job_id}"))
    } else {
        upstream(err)
    }
}

fn is_conditional<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn job_pk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

fn project_pk(project_id: &str) -> String {
    format!("PROJECT#{project_id}")
}

fn count_sk(shard: u32) -> String {
    format!("COUNT#{shard:04}")
}

fn receipt_sk(receipt: &str) -> String {
    format!("{RECEIPT_PREFIX}{receipt}")
}

fn obj_sk(key: &str) -> String {
    format!("OBJ#{key}")
}

fn early_pk(bucket: &str, key: &str) -> String {
    format!("EARLY#{bucket}#{key}")
}

/// Sort key of an early event's item (one per object).
const EARLY_SK: &str = "EVENT";

fn early_event(item: &Item) -> Result<EarlyEvent> {
    Ok(EarlyEvent {
        bucket: get_s(item, "bucket")?,
        key: get_s(item, "key")?,
        version_id: opt_s(item, "version_id"),
        expiry: opt_time(item, "expiry"),
        received_at: get_time(item, "received_at")?,
        expires_at: get_time(item, "expires_at")?,
    })
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn tier_name(tier: RetrievalTier) -> &'static str {
    match tier {
        RetrievalTier::Expedited => "Expedited",
        RetrievalTier::Standard => "Standard",
        RetrievalTier::Bulk => "Bulk",
    }
}

fn tier_from(name: &str) -> Result<RetrievalTier> {
    match name {
        "Expedited" => Ok(RetrievalTier::Expedited),
        "Standard" => Ok(RetrievalTier::Standard),
        "Bulk" => Ok(RetrievalTier::Bulk),
        other => Err(Error::Internal(format!("stored tier {other:?}"))),
    }
}

fn job_state_name(state: JobState) -> &'static str {
    match state {
        JobState::Planning => "planning",
        JobState::Restoring => "restoring",
        JobState::Completed => "completed",
        JobState::CompletedWithErrors => "completed_with_errors",
        JobState::Failed => "failed",
    }
}

fn job_state_from(name: &str) -> Result<JobState> {
    Ok(match name {
        "planning" => JobState::Planning,
        "restoring" => JobState::Restoring,
        "completed" => JobState::Completed,
        "completed_with_errors" => JobState::CompletedWithErrors,
        "failed" => JobState::Failed,
        other => return Err(Error::Internal(format!("stored job state {other:?}"))),
    })
}

fn object_state_name(state: ObjectState) -> &'static str {
    match state {
        ObjectState::Planned => "planned",
        ObjectState::Requested => "requested",
        ObjectState::Restored => "restored",
        ObjectState::NotNeeded => "not_needed",
        ObjectState::Failed => "failed",
    }
}

fn object_state_from(name: &str) -> Result<ObjectState> {
    Ok(match name {
        "planned" => ObjectState::Planned,
        "requested" => ObjectState::Requested,
        "restored" => ObjectState::Restored,
        "not_needed" => ObjectState::NotNeeded,
        "failed" => ObjectState::Failed,
        other => return Err(Error::Internal(format!("stored object state {other:?}"))),
    })
}

fn is_terminal(state: JobState) -> bool {
    matches!(
        state,
        JobState::Completed | JobState::CompletedWithErrors | JobState::Failed
    )
}

// ---- reading items -------------------------------------------------------------------------

fn get_s(item: &Item, name: &str) -> Result<String> {
    opt_s(item, name).ok_or_else(|| Error::Internal(format!("item lacks string {name}")))
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_list(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

fn get_u64(item: &Item, name: &str) -> u64 {
    opt_u64(item, name).unwrap_or(0)
}

fn opt_u64(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn opt_time(item: &Item, name: &str) -> Option<OffsetDateTime> {
    opt_s(item, name).and_then(|v| {
        OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).ok()
    })
}

fn get_time(item: &Item, name: &str) -> Result<OffsetDateTime> {
    opt_time(item, name).ok_or_else(|| Error::Internal(format!("item lacks time {name}")))
}

fn string_set(item: &Item, name: &str) -> Vec<String> {
    let mut values = item
        .get(name)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    values.sort();
    values
}

fn job_to_item(job: &Job) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(job_pk(&job.job_id)));
    item.insert("sk".into(), s("META"));
    item.insert("job_id".into(), s(&job.job_id));
    item.insert("project_id".into(), s(&job.project_id));
    item.insert("user".into(), s(&job.user));
    item.insert("path".into(), s(&job.path));
    item.insert("prefix".into(), s(&job.prefix));
    if let Some(base) = &job.local_base {
        item.insert("local_base".into(), s(base));
    }
    item.insert("tier".into(), s(tier_name(job.tier)));
    item.insert(
        "buckets".into(),
        AttributeValue::L(job.buckets.iter().map(s).collect()),
    );
    item.insert("state".into(), s(job_state_name(job.state)));
    item.insert("created_at".into(), s(ts(job.created_at)));
    item.insert("updated_at".into(), s(ts(job.updated_at)));
    item.insert("shards".into(), n(job.shards));
    item.insert("cur_bucket".into(), n(job.cursor.bucket_index));
    if let Some(token) = &job.cursor.token {
        item.insert("cur_token".into(), s(token));
    }
    item.insert("cur_page".into(), n(job.cursor.page));
    item.insert(
        "listing_done".into(),
        AttributeValue::Bool(job.cursor.listing_done),
    );
    let t = &job.totals;
    for (name, value) in [
        ("t_objects", t.objects),
        ("t_bytes", t.bytes),
        ("t_to_restore", t.to_restore),
        ("t_bytes_to_restore", t.bytes_to_restore),
        ("t_nn_listing", t.not_needed_at_listing),
        ("t_rs_listing", t.restored_at_listing),
        ("t_requested", t.requested),
    ] {
        item.insert(name.into(), n(value));
    }
    for (class, totals) in &t.by_class {
        item.insert(format!("rc_{class}_n"), n(totals.objects));
        item.insert(format!("rc_{class}_b"), n(totals.bytes));
    }
    if !job.notes.is_empty() {
        item.insert("notes".into(), AttributeValue::Ss(job.notes.clone()));
    }
    if !job.markers.is_empty() {
        item.insert("markers".into(), AttributeValue::Ss(job.markers.clone()));
    }
    if let Some(m) = &job.manifest {
        item.insert("manifest".into(), s(m));
    }
    if let Some(e) = &job.error {
        item.insert("error".into(), s(e));
    }
    if let Some(copy) = &job.copy {
        if let Ok(json) = serde_json::to_string(copy) {
            item.insert("copy".into(), s(json));
        }
    }
    item
}

fn job_from_item(item: &Item) -> Result<Job> {
    let mut by_class = std::collections::BTreeMap::new();
    for (name, value) in item {
        if let Some(class) = name
            .strip_prefix("rc_")
            .and_then(|rest| rest.strip_suffix("_n"))
        {
            let objects = value.as_n().ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            let bytes = get_u64(item, &format!("rc_{class}_b"));
            by_class.insert(class.to_string(), ClassTotals { objects, bytes });
        }
    }
    Ok(Job {
        job_id: get_s(item, "job_id")?,
        project_id: get_s(item, "project_id")?,
        user: get_s(item, "user")?,
        path: get_s(item, "path")?,
        prefix: get_s(item, "prefix")?,
        local_base: opt_s(item, "local_base"),
        tier: tier_from(&get_s(item, "tier")?)?,
        buckets: get_list(item, "buckets"),
        state: job_state_from(&get_s(item, "state")?)?,
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        shards: get_u64(item, "shards").max(1) as u32,
        cursor: Cursor {
            bucket_index: get_u64(item, "cur_bucket") as u32,
            token: opt_s(item, "cur_token"),
            page: get_u64(item, "cur_page"),
            listing_done: item
                .get("listing_done")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        totals: PlanTotals {
            objects: get_u64(item, "t_objects"),
            bytes: get_u64(item, "t_bytes"),
            to_restore: get_u64(item, "t_to_restore"),
            bytes_to_restore: get_u64(item, "t_bytes_to_restore"),
            not_needed_at_listing: get_u64(item, "t_nn_listing"),
            restored_at_listing: get_u64(item, "t_rs_listing"),
            requested: get_u64(item, "t_requested"),
            by_class,
        },
        notes: string_set(item, "notes"),
        manifest: opt_s(item, "manifest"),
        error: opt_s(item, "error"),
        markers: string_set(item, "markers"),
        copy: match opt_s(item, "copy") {
            Some(json) => {
                Some(serde_json::from_str(&json).map_err(|e| {
                    Error::Internal(format!("job item: unreadable copy record: {e}"))
                })?)
            }
            None => None,
        },
    })
}

fn object_to_item(object: &ObjectRecord) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(job_pk(&object.job_id)));
    item.insert("sk".into(), s(obj_sk(&object.key)));
    item.insert("job_id".into(), s(&object.job_id));
    item.insert("bucket".into(), s(&object.bucket));
    item.insert("key".into(), s(&object.key));
    if let Some(v) = &object.version_id {
        item.insert("version_id".into(), s(v));
    }
    item.insert("size".into(), n(object.size));
    item.insert("storage_class".into(), s(object.storage_class.as_s3()));
    if let Some(tier) = object.tier {
        item.insert("tier".into(), s(tier_name(tier)));
    }
    item.insert("state".into(), s(object_state_name(object.state)));
    item.insert("shard".into(), n(object.shard));
    if let Some(expiry) = object.expiry {
        item.insert("expiry".into(), s(ts(expiry)));
    }
    if let Some(error) = &object.error {
        item.insert("error".into(), s(error));
    }
    if object.settled_at_listing {
        item.insert("settled_at_listing".into(), AttributeValue::Bool(true));
    }
    item
}

fn object_from_item(item: &Item) -> Result<ObjectRecord> {
    Ok(ObjectRecord {
        job_id: get_s(item, "job_id")?,
        bucket: get_s(item, "bucket")?,
        key: get_s(item, "key")?,
        version_id: opt_s(item, "version_id"),
        size: get_u64(item, "size"),
        storage_class: StorageClass::from_s3(&get_s(item, "storage_class")?),
        tier: opt_s(item, "tier").map(|t| tier_from(&t)).transpose()?,
        state: object_state_from(&get_s(item, "state")?)?,
        shard: get_u64(item, "shard") as u32,
        expiry: opt_time(item, "expiry"),
        error: opt_s(item, "error"),
        settled_at_listing: item
            .get("settled_at_listing")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

fn stats_from_item(item: &Item) -> Result<StatsRecord> {
    Ok(StatsRecord {
        project_id: get_s(item, "project_id")?,
        prefix: get_s(item, "prefix")?,
        number_of_files: get_u64(item, "files"),
        total_bytes: get_u64(item, "bytes"),
        standard_cost_cents: get_u64(item, "standard_cents"),
        bulk_cost_cents: get_u64(item, "bulk_cents"),
        expires_at: get_time(item, "expires_at")?,
    })
}

fn mark_update(table: &str, object: &ObjectRecord) -> Result<Update> {
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", s(job_pk(&object.job_id)))
        .key("sk", s(obj_sk(&object.key)))
        .condition_expression("#s IN (:planned, :requested)")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":planned", s("planned"))
        .expression_attribute_values(":requested", s("requested"));
    update = match object.tier {
        Some(tier) => update
            .update_expression("SET #s = :requested, #t = :tier")
            .expression_attribute_names("#t", "tier")
            .expression_attribute_values(":tier", s(tier_name(tier))),
        None => update.update_expression("SET #s = :requested"),
    };
    update.build().map_err(internal)
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create_job(&self, job: &Job) -> Result<CreateOutcome> {
        for _ in 0..3 {
            let lock = Put::builder()
                .table_name(&self.table)
                .item("pk", s(project_pk(&job.project_id)))
                .item("sk", s("ACTIVE"))
                .item("job_id", s(&job.job_id))
                .item("created_at", s(ts(job.created_at)))
                // In the active-jobs index, so the tally and the sweeper list the active jobs
                // with one Query; with the scope the tally matches events against.
                .item("gsi1pk", s(ACTIVE_INDEX_KEY))
                .item("prefix", s(&job.prefix))
                .item(
                    "buckets",
                    AttributeValue::L(job.buckets.iter().map(s).collect()),
                )
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(internal)?;
            let meta = Put::builder()
                .table_name(&self.table)
                .set_item(Some(job_to_item(job)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(internal)?;
            let result = self
                .transact(vec![
                    TransactWriteItem::builder().put(lock).build(),
                    TransactWriteItem::builder().put(meta).build(),
                ])
                .await?;
            if let TxResult::Done = result {
                return Ok(CreateOutcome::Created);
            }
            let Some(active) = self.active_job(&job.project_id).await? else {
                continue; // released meanwhile: try again
            };
            // A lock left behind by a job that ended (crash between transition and release)
            // must not block the project forever.
            match self.get_meta(&active).await? {
                Some(item) if !is_terminal(job_state_from(&get_s(&item, "state")?)?) => {
                    return Ok(CreateOutcome::Existing(active))
                }
                _ => self.release_project(&job.project_id, &active).await?,
            }
        }
        Err(Error::conflict(
            "job_conflict",
            "could not take the project's active lock; retry",
        ))
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobView>> {
        let mut meta = None;
        let mut settled = SettledCounts::default();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(job_pk(job_id)))
                .expression_attribute_values(":lo", s("COUNT#"))
                .expression_attribute_values(":hi", s("META"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(upstream)?;
            for item in out.items() {
                if item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("META")
                {
                    meta = Some(job_from_item(item)?);
                } else {
                    settled.add(&SettledCounts {
                        restored: get_u64(item, "restored"),
                        restored_bytes: get_u64(item, "restored_bytes"),
                        not_needed: get_u64(item, "not_needed"),
                        failed: get_u64(item, "failed"),
                    });
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(meta.map(|job| JobView { job, settled }))
    }

    async fn active_job(&self, project_id: &str) -> Result<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(project_pk(project_id)))
            .key("sk", s("ACTIVE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(upstream)?;
        Ok(out.item.and_then(|item| opt_s(&item, "job_id")))
    }

    async fn acquire_lease(
        &self,
        job_id: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome> {
        let result = self
            .update_meta(job_id)
            .update_expression(
                "SET lease_owner = :me, lease_until = :until, started_page = cur_page",
            )
            .condition_expression(
                "attribute_exists(pk) AND #state = :planning AND listing_done = :false AND \
                 (attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :me)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(millis(until)))
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":planning", s("planning"))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                // The old item: the update changes neither the job nor its cursor.
                let item = out
                    .attributes
                    .ok_or_else(|| Error::Internal("lease update returned no item".into()))?;
                let job = job_from_item(&item)?;
                let page = Some(job.cursor.page);
                let replay = opt_u64(&item, "started_page") == page
                    || opt_u64(&item, "started_ahead") == page;
                Ok(LeaseOutcome::Acquired {
                    job: Box::new(job),
                    replay,
                })
            }
            Err(err) if is_conditional(&err) => {
                let Some(item) = self.get_meta(job_id).await? else {
                    return Err(Error::not_found(
                        "job_not_found",
                        format!("no job {job_id}"),
                    ));
                };
                let job = job_from_item(&item)?;
                if job.cursor.listing_done || job.state != JobState::Planning {
                    return Ok(LeaseOutcome::Done);
                }
                let until_ms = get_u64(&item, "lease_until") as i128;
                let until =
                    OffsetDateTime::from_unix_timestamp_nanos(until_ms * 1_000_000).unwrap_or(now);
                Ok(LeaseOutcome::Busy(until))
            }
            Err(err) => Err(upstream(err)),
        }
    }

    async fn begin_next_page(&self, job_id: &str, owner: &str, page: u64) -> Result<bool> {
        let result = self
            .update_meta(job_id)
            .update_expression("SET started_page = cur_page, started_ahead = :page")
            .condition_expression("lease_owner = :me AND cur_page = :at")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":at", n(page.saturating_sub(1)))
            .expression_attribute_values(":page", n(page))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .is_some_and(|item| opt_u64(&item, "started_ahead") == Some(page))),
            Err(err) if is_conditional(&err) => Err(Error::conflict(
                "cursor_moved",
                "fan-out lease lost or cursor moved",
            )),
            Err(err) => Err(upstream(err)),
        }
    }

    async fn release_lease(&self, job_id: &str, owner: &str) -> Result<()> {
        let result = self
            .update_meta(job_id)
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        condition_held(result).map(|_| ())
    }

    async fn put_objects(&self, objects: &[ObjectRecord]) -> Result<Vec<bool>> {
        // One conditional PutItem per object, several in flight: BatchWriteItem takes no
        // condition, and a transaction would fail as a whole on a replay.
        let writes: Vec<_> = objects
            .iter()
            .map(|object| self.put_object(object_to_item(object)))
            .collect();
        stream::iter(writes)
            .buffered(WRITE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn put_new_objects(&self, objects: &[ObjectRecord]) -> Result<()> {
        let batches: Vec<Vec<WriteRequest>> = objects
            .chunks(WRITE_BATCH)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|object| {
                        let put = PutRequest::builder()
                            .set_item(Some(object_to_item(object)))
                            .build()
                            .map_err(internal)?;
                        Ok(WriteRequest::builder().put_request(put).build())
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        stream::iter(batches.into_iter().map(|batch| self.batch_write(batch)))
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect::<Vec<Result<()>>>()
            .await
            .into_iter()
            .collect()
    }

    async fn get_objects(
        &self,
        job_id: &str,
        keys: &[String],
    ) -> Result<Vec<Option<ObjectRecord>>> {
        let found = self.object_items(job_id, keys).await?;
        keys.iter()
            .map(|k| found.get(k).map(object_from_item).transpose())
            .collect()
    }

    async fn mark_requested(&self, job_id: &str, objects: &[ObjectRecord]) -> Result<Vec<bool>> {
        debug_assert!(objects.iter().all(|o| o.job_id == job_id));
        let writes: Vec<_> = objects
            .iter()
            .map(|object| self.mark_one(object.clone()))
            .collect();
        stream::iter(writes)
            .buffered(WRITE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn settle(&self, object: &ObjectRecord, settlement: &Settlement) -> Result<bool> {
        let done = self
            .settle_many(&[(object.clone(), settlement.clone())])
            .await?;
        Ok(done[0])
    }

    async fn settle_many(&self, items: &[(ObjectRecord, Settlement)]) -> Result<Vec<bool>> {
        let mut done = vec![false; items.len()];
        let mut seen = HashSet::new();
        let mut by_job: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (object, _)) in items.iter().enumerate() {
            if seen.insert((object.job_id.as_str(), object.key.as_str())) {
                by_job.entry(&object.job_id).or_default().push(i);
            }
        }
        for (job_id, indexes) in by_job {
            for chunk in indexes.chunks(RECEIPT_BATCH) {
                let batch: Vec<&(ObjectRecord, Settlement)> =
                    chunk.iter().map(|&i| &items[i]).collect();
                let won = if batch.len() < TRANSACTION_BELOW {
                    self.settle_in_transaction(job_id, &batch).await?
                } else {
                    self.settle_with_receipt(job_id, &batch).await?
                };
                for (&i, won) in chunk.iter().zip(won) {
                    done[i] = won;
                }
            }
        }
        Ok(done)
    }

    async fn finish_settlements(&self, job_id: &str, now: OffsetDateTime) -> Result<usize> {
        let mut counted = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :receipt)")
                .expression_attribute_values(":pk", s(job_pk(job_id)))
                .expression_attribute_values(":receipt", s(RECEIPT_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(upstream)?;
            for item in out.items() {
                let lease_until = get_u64(item, "lease_until");
                if lease_until >= now.unix_timestamp().max(0) as u64 {
                    continue; // its call may still be running
                }
                let receipt = get_s(item, "sk")?
                    .trim_start_matches(RECEIPT_PREFIX)
                    .to_string();
                // Claim it, so two sweeps never finish one receipt at once.
                let claimed = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(job_pk(job_id)))
                    .key("sk", s(receipt_sk(&receipt)))
                    .update_expression("SET lease_until = :next")
                    .condition_expression("lease_until = :seen")
                    .expression_attribute_values(":seen", n(lease_until))
                    .expression_attribute_values(":next", n((now + RECEIPT_LEASE).unix_timestamp()))
                    .send()
                    .await;
                if !condition_held(claimed)? {
                    continue;
                }
                let keys: Vec<String> = item
                    .get("keys")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                    .unwrap_or_default();
                let mut counts = SettledCounts::default();
                let mut won = 0;
                for object in self.object_items(job_id, &keys).await?.values() {
                    if opt_s(object, "settled_by").as_deref() == Some(receipt.as_str()) {
                        let record = object_from_item(object)?;
                        counts.count(record.state, record.size);
                        won += 1;
                    }
                }
                let shard = get_u64(item, "shard") as u32;
                let added = self.close_receipt(job_id, shard, &receipt, &counts).await?;
                if added {
                    counted += won;
                }
                tracing::warn!(job_id, receipt = %receipt, objects = won, counts_added = added, "finished a settlement a crashed call left open");
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(counted)
    }

    async fn advance_cursor(&self, job_id: &str, owner: &str, commit: &PageCommit) -> Result<()> {
        let PageCommit {
            from,
            to,
            add,
            notes,
            keep_lease,
        } = commit;
        let keep_lease = *keep_lease;
        let mut set = vec![
            "cur_bucket = :b",
            "cur_page = :page",
            "listing_done = :done",
            "updated_at = :now",
        ];
        let mut remove = Vec::new();
        let mut adds = vec![
            "t_objects :o".to_string(),
            "t_bytes :by".to_string(),
            "t_to_restore :tr".to_string(),
            "t_bytes_to_restore :btr".to_string(),
            "t_nn_listing :nn".to_string(),
            "t_rs_listing :rs".to_string(),
            "t_requested :rq".to_string(),
        ];
        let mut update = self
            .update_meta(job_id)
            .condition_expression("lease_owner = :me AND cur_page = :from AND #state = :planning")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":from", n(from.page))
            .expression_attribute_values(":planning", s("planning"))
            .expression_attribute_values(":b", n(to.bucket_index))
            .expression_attribute_values(":page", n(to.page))
            .expression_attribute_values(":done", AttributeValue::Bool(to.listing_done))
            .expression_attribute_values(":now", s(ts(OffsetDateTime::now_utc())))
            .expression_attribute_values(":o", n(add.objects))
            .expression_attribute_values(":by", n(add.bytes))
            .expression_attribute_values(":tr", n(add.to_restore))
            .expression_attribute_values(":btr", n(add.bytes_to_restore))
            .expression_attribute_values(":nn", n(add.not_needed_at_listing))
            .expression_attribute_values(":rs", n(add.restored_at_listing))
            .expression_attribute_values(":rq", n(add.requested));
        match &to.token {
            Some(token) => {
                set.push("cur_token = :tok");
                update = update.expression_attribute_values(":tok", s(token));
            }
            None => remove.push("cur_token"),
        }
        if to.listing_done {
            set.push("#state = :restoring");
            update = update.expression_attribute_values(":restoring", s("restoring"));
        }
        match keep_lease {
            Some(until) => {
                set.push("lease_until = :until");
                update = update.expression_attribute_values(":until", n(millis(until)));
            }
            None => {
                remove.push("lease_owner");
                remove.push("lease_until");
            }
        }
        for (i, (class, totals)) in add.by_class.iter().enumerate() {
            adds.push(format!("#cn{i} :cn{i}"));
            adds.push(format!("#cb{i} :cb{i}"));
            update = update
                .expression_attribute_names(format!("#cn{i}"), format!("rc_{class}_n"))
                .expression_attribute_names(format!("#cb{i}"), format!("rc_{class}_b"))
                .expression_attribute_values(format!(":cn{i}"), n(totals.objects))
                .expression_attribute_values(format!(":cb{i}"), n(totals.bytes));
        }
        if !notes.is_empty() {
            adds.push("#notes :notes".into());
            update = update
                .expression_attribute_names("#notes", "notes")
                .expression_attribute_values(":notes", AttributeValue::Ss(notes.to_vec()));
        }
        let mut expression = format!("SET {} ADD {}", set.join(", "), adds.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match update.update_expression(expression).send().await {
            Ok(_) => Ok(()),
            Err(err) if is_conditional(&err) => Err(Error::conflict(
                "cursor_moved",
                "fan-out lease lost or cursor moved",
            )),
            Err(err) => Err(upstream(err)),
        }
    }

    async fn list_objects(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage> {
        let start = after.map(|after| {
            Item::from([
                ("pk".to_string(), s(job_pk(job_id))),
                ("sk".to_string(), s(obj_sk(after))),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :obj)")
            .expression_attribute_values(":pk", s(job_pk(job_id)))
            .expression_attribute_values(":obj", s("OBJ#"))
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(upstream)?;
        let objects = out
            .items()
            .iter()
            .map(object_from_item)
            .collect::<Result<Vec<_>>>()?;
        let next = out
            .last_evaluated_key
            .and_then(|k| opt_s(&k, "sk"))
            .and_then(|sk| sk.strip_prefix("OBJ#").map(str::to_string));
        Ok(ObjectPage { objects, next })
    }

    async fn transition_job(
        &self,
        job_id: &str,
        from: &[JobState],
        to: JobState,
        error: Option<&str>,
    ) -> Result<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!(":f{i}")).collect();
        let mut update = self
            .update_meta(job_id)
            .condition_expression(format!(
                "attribute_exists(pk) AND #state IN ({})",
                placeholders.join(", ")
            ))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(job_state_name(to)))
            .expression_attribute_values(":now", s(ts(OffsetDateTime::now_utc())))
            .return_values(ReturnValue::AllNew);
        for (p, state) in placeholders.iter().zip(from) {
            update = update.expression_attribute_values(p, s(job_state_name(*state)));
        }
        let expression = match error {
            Some(error) => {
                update = update
                    .expression_attribute_names("#e", "error")
                    .expression_attribute_values(":err", s(error));
                "SET #state = :to, updated_at = :now, #e = :err"
            }
            None => "SET #state = :to, updated_at = :now",
        };
        match update.update_expression(expression).send().await {
            Ok(out) => {
                if is_terminal(to) {
                    let project = out
                        .attributes
                        .as_ref()
                        .and_then(|item| opt_s(item, "project_id"))
                        .ok_or_else(|| Error::Internal("job without project".into()))?;
                    self.release_project(&project, job_id).await?;
                }
                Ok(true)
            }
            Err(err) if is_conditional(&err) => {
                if self.get_meta(job_id).await?.is_none() {
                    return Err(Error::not_found(
                        "job_not_found",
                        format!("no job {job_id}"),
                    ));
                }
                Ok(false)
            }
            Err(err) => Err(upstream(err)),
        }
    }

    async fn set_manifest(&self, job_id: &str, uri: &str) -> Result<()> {
        let result = self
            .update_meta(job_id)
            .update_expression("SET #m = :m, updated_at = :now")
            .expression_attribute_names("#m", "manifest")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":m", s(uri))
            .expression_attribute_values(":now", s(ts(OffsetDateTime::now_utc())))
            .send()
            .await;
        result
            .map(|_| ())
            .map_err(|err| job_write_error(err, job_id))
    }

    async fn set_copy(&self, job_id: &str, copy: &CopyDispatch) -> Result<()> {
        let json = serde_json::to_string(copy)
            .map_err(|e| Error::Internal(format!("copy record: {e}")))?;
        let result = self
            .update_meta(job_id)
            .update_expression("SET #c = :c")
            .expression_attribute_names("#c", "copy")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":c", s(json))
            .send()
            .await;
        result
            .map(|_| ())
            .map_err(|err| job_write_error(err, job_id))
    }

    async fn set_marker(&self, job_id: &str, marker: &str) -> Result<bool> {
        let result = self
            .update_meta(job_id)
            .update_expression("ADD #mk :set")
            .condition_expression("attribute_exists(pk) AND NOT contains(#mk, :m)")
            .expression_attribute_names("#mk", "markers")
            .expression_attribute_values(":set", AttributeValue::Ss(vec![marker.to_string()]))
            .expression_attribute_values(":m", s(marker))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_conditional(&err) => {
                if self.get_meta(job_id).await?.is_none() {
                    return Err(Error::not_found(
                        "job_not_found",
                        format!("no job {job_id}"),
                    ));
                }
                Ok(false)
            }
            Err(err) => Err(upstream(err)),
        }
    }

    async fn put_stats(&self, stats: &StatsRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("STATS#{}", stats.project_id)))
            .item("sk", s(format!("PATH#{}", stats.prefix)))
            .item("project_id", s(&stats.project_id))
            .item("prefix", s(&stats.prefix))
            .item("files", n(stats.number_of_files))
            .item("bytes", n(stats.total_bytes))
            .item("standard_cents", n(stats.standard_cost_cents))
            .item("bulk_cents", n(stats.bulk_cost_cents))
            .item("expires_at", s(ts(stats.expires_at)))
            .item("ttl", n(stats.expires_at.unix_timestamp()))
            .send()
            .await
            .map_err(upstream)?;
        Ok(())
    }

    async fn get_stats(&self, project_id: &str, prefix: &str) -> Result<Option<StatsRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("STATS#{project_id}")))
            .key("sk", s(format!("PATH#{prefix}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(upstream)?;
        out.item.as_ref().map(stats_from_item).transpose()
    }

    async fn put_early_event(&self, event: &EarlyEvent) -> Result<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(early_pk(&event.bucket, &event.key)))
            .item("sk", s(EARLY_SK))
            .item("bucket", s(&event.bucket))
            .item("key", s(&event.key))
            .item("received_at", s(ts(event.received_at)))
            .item("expires_at", s(ts(event.expires_at)))
            .item("ttl", n(event.expires_at.unix_timestamp()));
        if let Some(expiry) = event.expiry {
            put = put.item("expiry", s(ts(expiry)));
        }
        if let Some(version) = &event.version_id {
            put = put.item("version_id", s(version));
        }
        put.send().await.map_err(upstream)?;
        Ok(())
    }

    async fn get_early_event(&self, bucket: &str, key: &str) -> Result<Option<EarlyEvent>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(early_pk(bucket, key)))
            .key("sk", s(EARLY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(upstream)?;
        out.item.as_ref().map(early_event).transpose()
    }

    async fn get_early_events(&self, objects: &[(&str, &str)]) -> Result<Vec<EarlyEvent>> {
        let mut pks: Vec<String> = objects
            .iter()
            .map(|(bucket, key)| early_pk(bucket, key))
            .collect();
        pks.sort();
        pks.dedup();
        let items = self
            .batch_get(pks.into_iter().map(|pk| (pk, EARLY_SK.to_string())))
            .await?;
        items.iter().map(early_event).collect()
    }

    async fn clear_marker(&self, job_id: &str, marker: &str) -> Result<()> {
        self.update_meta(job_id)
            .update_expression("DELETE #mk :set")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#mk", "markers")
            .expression_attribute_values(":set", AttributeValue::Ss(vec![marker.to_string()]))
            .send()
            .await
            .map_err(|err| job_write_error(err, job_id))?;
        Ok(())
    }

    /// One Query of the sparse `ACTIVE` index: only the project-lock items carry `gsi1pk`, so
    /// it reads the active jobs and nothing else, however large the table.
    async fn active_jobs(&self) -> Result<Vec<ActiveJob>> {
        let mut active = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACTIVE_JOBS_INDEX)
                .key_condition_expression("gsi1pk = :active")
                .expression_attribute_values(":active", s(ACTIVE_INDEX_KEY))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(upstream)?;
            for item in out.items() {
                active.push(ActiveJob {
                    job_id: get_s(item, "job_id")?,
                    prefix: get_s(item, "prefix")?,
                    buckets: get_list(item, "buckets"),
                });
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        active.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        Ok(active)
    }
}
