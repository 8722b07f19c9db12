//! Planning: what a prefix holds across the asset buckets (first bucket wins on duplicate
//! keys), what restoring it costs, and how a job's totals turn into an estimate and a window.

use std::collections::HashSet;

use super::cost::{CostEstimate, PriceList, Usage};
use super::job::PlanTotals;
use super::storage::{
    expected_job_window, Classification, CompletionWindow, RestorePolicy, RetrievalTier,
    StorageClass,
};
use crate::ports::ObjectStore;
use crate::Result;

/// Keys per listing call while planning.
const PAGE: i32 = 1000;

/// What a whole prefix holds (the `/stats` answer before pricing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixSummary {
    /// Objects (folder keys and later-bucket duplicates excluded).
    pub objects: u64,
    pub bytes: u64,
    /// Objects that need a restore, per storage class.
    pub usage: Usage,
}

/// Lists `prefix` in every bucket, in order, and sums it up; a key seen in an earlier bucket
/// is skipped in later ones (seed behaviour). Reads the whole listing: for `/stats`, which the
/// seed also answered synchronously.
pub async fn summarize(
    store: &dyn ObjectStore,
    buckets: &[String],
    prefix: &str,
    policy: RestorePolicy,
) -> Result<PrefixSummary> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut summary = PrefixSummary::default();
    for (index, bucket) in buckets.iter().enumerate() {
        let last = index + 1 == buckets.len();
        let mut token: Option<String> = None;
        loop {
            let page = store
                .list_page(bucket, prefix, token.as_deref(), PAGE)
                .await?;
            for object in page.objects {
                if object.key.ends_with('/') {
                    continue;
                }
                // The last bucket needs no memory of its keys: nothing comes after it.
                let first = if last {
                    !seen.contains(&object.key)
                } else {
                    seen.insert(object.key.clone())
                };
                if !first {
                    continue;
                }
                summary.objects += 1;
                summary.bytes += object.size;
                // The tier does not change whether an object needs a restore.
                if let Classification::Restore(_) = object.classify(RetrievalTier::Standard, policy)
                {
                    summary.usage.add_object(&object.storage_class, object.size);
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    Ok(summary)
}

/// Whether the prefix holds any object in any bucket, and whether it is small: the first page
/// of every bucket was the whole listing. Cheap (one listing call per bucket at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub any: bool,
    pub small: bool,
}

/// Looks at the first page of each bucket (see [`Probe`]).
pub async fn probe(store: &dyn ObjectStore, buckets: &[String], prefix: &str) -> Result<Probe> {
    let mut result = Probe {
        any: false,
        small: true,
    };
    for bucket in buckets {
        let page = store.list_page(bucket, prefix, None, PAGE).await?;
        if page.next.is_some() {
            result.small = false;
            // A first page of only folder keys with more to come: assume there is content.
            result.any = true;
        }
        if page.objects.iter().any(|o| !o.key.ends_with('/')) {
            result.any = true;
        }
    }
    Ok(result)
}

/// Counter shards for a job: one for a small job; for a big one enough that completion events
/// of a huge Bulk restore stay far below one item's ~1,000 writes/s.
pub fn shards_for(probe: Probe) -> u32 {
    if probe.small {
        1
    } else {
        16
    }
}

/// The usage of a job's planned totals (objects to restore per storage class).
pub fn usage_of(totals: &PlanTotals) -> Usage {
    let mut usage = Usage::default();
    for (class, t) in &totals.by_class {
        usage.add(&StorageClass::from_s3(class), t.objects, t.bytes);
    }
    usage
}

/// Cost estimate of a job's totals so far (all of them once its listing is done).
pub fn estimate(prices: &PriceList, totals: &PlanTotals, tier: RetrievalTier) -> CostEstimate {
    prices.estimate(&usage_of(totals), tier)
}

/// Expected completion window of a job, counted from its requests; `None` when nothing needs
/// a restore.
pub fn window(totals: &PlanTotals, tier: RetrievalTier) -> Option<CompletionWindow> {
    let classes: Vec<StorageClass> = totals
        .by_class
        .keys()
        .map(|c| StorageClass::from_s3(c))
        .collect();
    expected_job_window(classes.iter(), tier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryObjectStore;

    #[tokio::test]
    async fn first_bucket_wins_and_folders_are_skipped() {
        let store = MemoryObjectStore::new();
        store.add_object("a", "p/x.mov", 10, StorageClass::Glacier);
        store.add_object("a", "p/", 0, StorageClass::Standard);
        store.add_object("b", "p/x.mov", 99, StorageClass::Standard);
        store.add_object("b", "p/y.mov", 20, StorageClass::DeepArchive);
        store.add_object("c", "p/y.mov", 77, StorageClass::Glacier);
        store.add_object("c", "p/z.wav", 5, StorageClass::Standard);
        store.add_object("c", "q/other", 5, StorageClass::Glacier);
        let buckets = vec!["a".to_string(), "b".into(), "c".into()];
        let s = summarize(&store, &buckets, "p/", RestorePolicy::default())
            .await
            .unwrap();
        assert_eq!(s.objects, 3);
        assert_eq!(s.bytes, 35);
        assert_eq!(s.usage.total_objects(), 2);
        assert_eq!(s.usage.classes[&StorageClass::Glacier].bytes, 10);
        assert_eq!(s.usage.classes[&StorageClass::DeepArchive].bytes, 20);

        let p = probe(&store, &buckets, "p/").await.unwrap();
        assert_eq!(
            p,
            Probe {
                any: true,
                small: true
            }
        );
        assert_eq!(shards_for(p), 1);
        let p = probe(&store, &buckets, "none/").await.unwrap();
        assert!(!p.any);
    }
}
