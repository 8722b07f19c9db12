//! The cost model of DESIGN §4: restore price = per-GB price × GB + per-1,000-requests price ×
//! objects / 1000, for each storage class and retrieval tier.
//!
//! - Price lists are data: JSON files in `shared/prices/` embedded at build time (`aws`, the
//!   default, today's list prices; `seed`, the seed's table) or any JSON file of the same shape
//!   named by path. The caller passes the selector (env `PRICE_LIST`); this module never reads
//!   the environment.
//! - GB = 1024^3 bytes. Prices are parsed from decimal strings into integer micro-dollars, and
//!   each total is computed as an exact fraction in `u128` and rounded half up to cents once,
//!   at the end (so a per-class total and the grand total are each rounded from exact values,
//!   never summed from rounded parts).
//! - A class whose list has no Expedited entry (Deep Archive) has no Expedited tier: asking
//!   for it is priced as Standard and flagged with the fallback, as the restore will be.
//! - Classes absent from the list (STANDARD, *_IA, ...) need no restore and cost nothing;
//!   they are left out of the estimate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::storage::{FallbackReason, RetrievalTier, StorageClass, TierFallback};
use crate::{Error, Result};

/// Bytes per priced GB (AWS bills per GiB).
pub const BYTES_PER_GB: u64 = 1024 * 1024 * 1024;

/// Name of the price list used when none is chosen.
pub const DEFAULT_PRICE_LIST: &str = "aws";

const BUILTIN: [(&str, &str); 2] = [
    ("aws", include_str!("../../prices/aws.json")),
    ("seed", include_str!("../../prices/seed.json")),
];

/// Classes that must be priced in every list (Standard and Bulk at least), so an estimate
/// never silently reads zero for an archived object.
const REQUIRED_CLASSES: [StorageClass; 3] = [
    StorageClass::Glacier,
    StorageClass::DeepArchive,
    StorageClass::IntelligentTiering,
];

const MICROS_PER_DOLLAR: u128 = 1_000_000;
const MICROS_PER_CENT: u128 = 10_000;

/// Price of one tier of one class, in micro-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPrice {
    pub per_gb_micros: u64,
    pub per_1000_requests_micros: u64,
}

/// A named price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    pub name: String,
    pub description: String,
    classes: BTreeMap<StorageClass, BTreeMap<RetrievalTier, TierPrice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    name: Option<String>,
    #[serde(default)]
    description: String,
    classes: BTreeMap<StorageClass, BTreeMap<String, RawPrice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    per_gb: serde_json::Value,
    per_1000_requests: serde_json::Value,
}

impl PriceList {
    /// Chooses a price list from the `PRICE_LIST` setting: unset or empty → `aws`; a built-in
    /// name (`aws`, `seed`, any case) → that list; anything else is read as a JSON file path.
    pub fn select(spec: Option<&str>) -> Result<PriceList> {
        let spec = spec.map(str::trim).unwrap_or("");
        if spec.is_empty() {
            return Self::builtin(DEFAULT_PRICE_LIST);
        }
        if BUILTIN.iter().any(|(n, _)| n.eq_ignore_ascii_case(spec)) {
            return Self::builtin(&spec.to_ascii_lowercase());
        }
        let text = std::fs::read_to_string(spec).map_err(|e| {
            Error::Config(format!(
                "PRICE_LIST {spec:?} is neither a built-in price list (aws, seed) nor a readable file: {e}"
            ))
        })?;
        Self::from_json_named(&text, spec)
    }

    /// A built-in list by exact name.
    pub fn builtin(name: &str) -> Result<PriceList> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Error::Config(format!("no built-in price list named {name:?}")))?;
        Self::from_json_named(text, name)
    }

    /// Today's AWS list prices (the default).
    pub fn aws() -> PriceList {
        Self::builtin("aws").expect("embedded aws price list is valid")
    }

    /// The seed's table.
    pub fn seed() -> PriceList {
        Self::builtin("seed").expect("embedded seed price list is valid")
    }

    /// Parses a price list (the shape of `shared/prices/aws.json`); `fallback_name` names it
    /// when the file has no `name`. Invalid lists are `Error::Config`, naming the problem.
    pub fn from_json_named(text: &str, fallback_name: &str) -> Result<PriceList> {
        let bad = |why: String| Error::Config(format!("price list {fallback_name:?}: {why}"));
        let raw: RawList = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut classes = BTreeMap::new();
        for (class, tiers) in raw.classes {
            let mut prices = BTreeMap::new();
            for (tier_name, price) in tiers {
                let tier = RetrievalTier::parse(&tier_name)
                    .ok_or_else(|| bad(format!("{class}: unknown tier {tier_name:?}")))?;
                let field = |name: &str, v: &serde_json::Value| {
                    parse_micros(v).map_err(|why| bad(format!("{class} {tier} {name}: {why}")))
                };
                prices.insert(
                    tier,
                    TierPrice {
                        per_gb_micros: field("per_gb", &price.per_gb)?,
                        per_1000_requests_micros: field(
                            "per_1000_requests",
                            &price.per_1000_requests,
                        )?,
                    },
                );
            }
            classes.insert(class, prices);
        }
        for class in REQUIRED_CLASSES {
            for tier in [RetrievalTier::Standard, RetrievalTier::Bulk] {
                if !classes.get(&class).is_some_and(|t| t.contains_key(&tier)) {
                    return Err(bad(format!("{class} has no {tier} price")));
                }
            }
        }
        Ok(PriceList {
            name: raw.name.unwrap_or_else(|| fallback_name.to_string()),
            description: raw.description,
            classes,
        })
    }

    /// The price that applies to `class` asked with `tier`: the tier actually used (Standard
    /// when the class has no Expedited), its price, and the fallback if any. `None` for
    /// classes that need no restore.
    pub fn price(
        &self,
        class: &StorageClass,
        tier: RetrievalTier,
    ) -> Option<(TierPrice, Option<TierFallback>)> {
        let tiers = self.classes.get(class)?;
        if let Some(price) = tiers.get(&tier) {
            return Some((*price, None));
        }
        let used = tier.fallback_for_expedited_unavailable()?;
        let price = tiers.get(&used)?;
        Some((
            *price,
            Some(TierFallback {
                requested: tier,
                used,
                reason: FallbackReason::ExpeditedNotOffered,
            }),
        ))
    }

    /// Estimate of restoring `usage` for every tier, with `chosen` singled out.
    pub fn estimate(&self, usage: &Usage, chosen: RetrievalTier) -> CostEstimate {
        let tiers: Vec<TierEstimate> = RetrievalTier::ALL
            .into_iter()
            .map(|tier| self.estimate_tier(usage, tier))
            .collect();
        let chosen_estimate = tiers
            .iter()
            .find(|t| t.tier == chosen)
            .cloned()
            .expect("every tier is estimated");
        CostEstimate {
            price_list: self.name.clone(),
            tier: chosen,
            chosen: chosen_estimate,
            tiers,
        }
    }

    /// Estimate of one tier.
    pub fn estimate_tier(&self, usage: &Usage, tier: RetrievalTier) -> TierEstimate {
        let mut total = Exact::default();
        let mut classes = Vec::new();
        for (class, u) in &usage.classes {
            let Some((price, fallback)) = self.price(class, tier) else {
                continue;
            };
            let exact = Exact::of(u, price);
            total.add(exact);
            let cents = exact.cents();
            classes.push(ClassEstimate {
                storage_class: class.clone(),
                objects: u.objects,
                bytes: u.bytes,
                tier_used: fallback.map_or(tier, |f| f.used),
                fallback,
                cents,
                usd: format_usd(cents),
            });
        }
        let cents = total.cents();
        TierEstimate {
            tier,
            cents,
            usd: format_usd(cents),
            classes,
        }
    }
}

/// An exact amount in micro-dollars as `numerator / DENOMINATOR`, so that bytes / 1024^3 and
/// objects / 1000 never lose a fraction before the final rounding.
#[derive(Debug, Clone, Copy, Default)]
struct Exact {
    numerator: u128,
}

impl Exact {
    const DENOMINATOR: u128 = BYTES_PER_GB as u128 * 1000;

    fn of(usage: &ClassUsage, price: TierPrice) -> Exact {
        let data = usage.bytes as u128 * price.per_gb_micros as u128 * 1000;
        let requests =
            usage.objects as u128 * price.per_1000_requests_micros as u128 * BYTES_PER_GB as u128;
        Exact {
            numerator: data + requests,
        }
    }

    fn add(&mut self, other: Exact) {
        self.numerator += other.numerator;
    }

    /// Rounded half up to whole cents.
    fn cents(self) -> u64 {
        let per_cent = Self::DENOMINATOR * MICROS_PER_CENT;
        let cents = (self.numerator + per_cent / 2) / per_cent;
        u64::try_from(cents).unwrap_or(u64::MAX)
    }
}

/// Parses a non-negative decimal dollar amount (string like `"0.0025"`, or a JSON number) into
/// micro-dollars, exactly: more than six decimals is an error rather than a silent rounding.
fn parse_micros(value: &serde_json::Value) -> std::result::Result<u64, String> {
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("expected a decimal amount, got {other}")),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(format!("{text:?} is not a non-negative decimal amount"));
    }
    if frac.len() > 6 {
        return Err(format!("{text:?} has more than 6 decimals"));
    }
    let whole: u128 = whole
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let frac_micros: u128 = format!("{frac:0<6}").parse().unwrap_or(0);
    u64::try_from(whole * MICROS_PER_DOLLAR + frac_micros)
        .map_err(|_| format!("{text:?} is too large"))
}

/// `12345` cents → `"123.45"`.
pub fn format_usd(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Objects and bytes of one storage class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassUsage {
    pub objects: u64,
    pub bytes: u64,
}

/// What a job restores, per storage class: the input of an estimate. Serialized as a map
/// from the S3 class name, so the job store can keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usage {
    pub classes: BTreeMap<StorageClass, ClassUsage>,
}

impl Usage {
    /// Counts one object.
    pub fn add_object(&mut self, class: &StorageClass, bytes: u64) {
        self.add(class, 1, bytes);
    }

    /// Counts `objects` objects totalling `bytes`.
    pub fn add(&mut self, class: &StorageClass, objects: u64, bytes: u64) {
        let u = self.classes.entry(class.clone()).or_default();
        u.objects += objects;
        u.bytes += bytes;
    }

    /// Adds another usage (e.g. one page of a listing to the job's running total).
    pub fn merge(&mut self, other: &Usage) {
        for (class, u) in &other.classes {
            self.add(class, u.objects, u.bytes);
        }
    }

    pub fn total_objects(&self) -> u64 {
        self.classes.values().map(|u| u.objects).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.classes.values().map(|u| u.bytes).sum()
    }
}

/// The estimate the API returns: the chosen tier and all tiers, per class and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Name of the price list used.
    pub price_list: String,
    /// The tier the user asked for.
    pub tier: RetrievalTier,
    pub chosen: TierEstimate,
    /// Expedited, Standard, Bulk.
    pub tiers: Vec<TierEstimate>,
}

impl CostEstimate {
    /// The estimate of one tier.
    pub fn for_tier(&self, tier: RetrievalTier) -> &TierEstimate {
        self.tiers
            .iter()
            .find(|t| t.tier == tier)
            .expect("every tier is estimated")
    }
}

/// Cost of one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierEstimate {
    pub tier: RetrievalTier,
    /// Total in US cents, rounded half up from the exact amount.
    pub cents: u64,
    /// The same as a decimal string (`"40.72"`).
    pub usd: String,
    pub classes: Vec<ClassEstimate>,
}

impl TierEstimate {
    /// Dollars as a float, for the seed's `/stats` answer (display only, never for sums).
    pub fn dollars(&self) -> f64 {
        self.cents as f64 / 100.0
    }
}

/// Cost of one storage class in one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassEstimate {
    pub storage_class: StorageClass,
    pub objects: u64,
    pub bytes: u64,
    /// Tier the restore will use (Standard for Deep Archive asked Expedited).
    pub tier_used: RetrievalTier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<TierFallback>,
    pub cents: u64,
    pub usd: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetrievalTier::*;

    const TIB: u64 = 1024 * BYTES_PER_GB;

    fn usage(class: StorageClass, objects: u64, bytes: u64) -> Usage {
        let mut u = Usage::default();
        u.add(&class, objects, bytes);
        u
    }

    fn table(list: &PriceList, u: &Usage) -> Vec<(RetrievalTier, String)> {
        list.estimate(u, Standard)
            .tiers
            .into_iter()
            .map(|t| (t.tier, t.usd))
            .collect()
    }

    /// The golden table: the seed's figures and today's list prices side by side, for 1000
    /// GLACIER objects totalling 1 TiB.
    #[test]
    fn golden_table_seed_beside_today() {
        let u = usage(StorageClass::Glacier, 1000, TIB);
        let (seed, aws) = (PriceList::seed(), PriceList::aws());
        let rows: Vec<(RetrievalTier, String, String)> = RetrievalTier::ALL
            .into_iter()
            .map(|t| {
                (
                    t,
                    seed.estimate_tier(&u, t).usd,
                    aws.estimate_tier(&u, t).usd,
                )
            })
            .collect();
        let want = [
            (Expedited, "40.72", "40.72"),
            (Standard, "10.29", "10.29"),
            (Bulk, "2.59", "0.00"),
        ];
        assert_eq!(
            rows,
            want.map(|(t, s, a)| (t, s.to_string(), a.to_string()))
        );
    }

    #[test]
    fn seed_table_to_the_cent() {
        // The seed README: 1000 objects totalling 1 TB(=TiB) in GLACIER.
        let u = usage(StorageClass::Glacier, 1000, TIB);
        let seed = PriceList::seed();
        assert_eq!(seed.name, "seed");
        assert_eq!(
            table(&seed, &u),
            vec![
                (Expedited, "40.72".into()),
                (Standard, "10.29".into()),
                (Bulk, "2.59".into()),
            ]
        );
        // 2.585 rounds half up.
        assert_eq!(seed.estimate_tier(&u, Bulk).cents, 259);
    }

    #[test]
    fn todays_aws_prices_beside_the_seed_table() {
        let u = usage(StorageClass::Glacier, 1000, TIB);
        let aws = PriceList::aws();
        assert_eq!(aws.name, "aws");
        // Flexible Retrieval Bulk is free today.
        assert_eq!(
            table(&aws, &u),
            vec![
                (Expedited, "40.72".into()),
                (Standard, "10.29".into()),
                (Bulk, "0.00".into()),
            ]
        );
        // Deep Archive: Standard $0.02/GB + $0.10/1k, Bulk $0.0025/GB + $0.025/1k.
        let u = usage(StorageClass::DeepArchive, 1000, TIB);
        assert_eq!(
            table(&aws, &u),
            vec![
                (Expedited, "20.58".into()),
                (Standard, "20.58".into()),
                (Bulk, "2.59".into()),
            ]
        );
        // Intelligent-Tiering archive tiers: Standard and Bulk free, Expedited charged.
        let u = usage(StorageClass::IntelligentTiering, 1000, TIB);
        assert_eq!(
            table(&aws, &u),
            vec![
                (Expedited, "40.72".into()),
                (Standard, "0.00".into()),
                (Bulk, "0.00".into()),
            ]
        );
    }

    #[test]
    fn deep_archive_expedited_is_priced_as_standard_and_flagged() {
        let u = usage(StorageClass::DeepArchive, 1000, TIB);
        let e = PriceList::aws().estimate(&u, Expedited);
        assert_eq!(e.tier, Expedited);
        assert_eq!(e.chosen.tier, Expedited);
        assert_eq!(e.chosen.cents, 2058);
        let class = &e.chosen.classes[0];
        assert_eq!(class.tier_used, Standard);
        assert_eq!(
            class.fallback,
            Some(TierFallback {
                requested: Expedited,
                used: Standard,
                reason: FallbackReason::ExpeditedNotOffered
            })
        );
        assert_eq!(e.for_tier(Standard).classes[0].fallback, None);
    }

    #[test]
    fn mixed_classes_round_each_total_once_from_exact_amounts() {
        // 1 byte GLACIER + 1 byte DEEP_ARCHIVE, one object each, seed Bulk: each class is
        // 0.000025 dollars (rounds to 0 cents), and so is the total.
        let mut u = Usage::default();
        u.add_object(&StorageClass::Glacier, 1);
        u.add_object(&StorageClass::DeepArchive, 1);
        u.add_object(&StorageClass::Standard, 10 * TIB); // readable: not priced
        let t = PriceList::seed().estimate_tier(&u, Bulk);
        assert_eq!(t.classes.len(), 2);
        assert_eq!(t.cents, 0);

        // 200 objects of 0.025/1k each → $0.005 per class: each class rounds half up to 1 cent,
        // but the exact total $0.01 is 1 cent, not the 2 a sum of rounded parts would give.
        let mut u = Usage::default();
        u.add(&StorageClass::Glacier, 200, 0);
        u.add(&StorageClass::DeepArchive, 200, 0);
        let t = PriceList::seed().estimate_tier(&u, Bulk);
        assert_eq!(
            t.classes.iter().map(|c| c.cents).collect::<Vec<_>>(),
            vec![1, 1]
        );
        assert_eq!(t.cents, 1);
        assert_eq!(u.total_objects(), 400);
    }

    #[test]
    fn half_a_cent_rounds_up_and_just_below_rounds_down() {
        // Standard $0.05 per 1000 requests: 100 objects = $0.005 → 1 cent; 99 → 0 cents.
        let list = PriceList::seed();
        assert_eq!(
            list.estimate_tier(&usage(StorageClass::Glacier, 100, 0), Standard)
                .cents,
            1
        );
        assert_eq!(
            list.estimate_tier(&usage(StorageClass::Glacier, 99, 0), Standard)
                .cents,
            0
        );
        // Bytes: $0.01/GB, half a cent is exactly GB/2 bytes; one byte less rounds down.
        let half = BYTES_PER_GB / 2;
        assert_eq!(
            list.estimate_tier(&usage(StorageClass::Glacier, 0, half), Standard)
                .cents,
            1
        );
        assert_eq!(
            list.estimate_tier(&usage(StorageClass::Glacier, 0, half - 1), Standard)
                .cents,
            0
        );
    }

    #[test]
    fn huge_usage_does_not_overflow() {
        let u = usage(StorageClass::Glacier, u64::MAX, u64::MAX);
        let t = PriceList::seed().estimate_tier(&u, Expedited);
        // 2^64 bytes = 2^34 GB × $0.03 + (2^64/1000) × $10 ≈ $1.8e17 in cents ≈ 1.8e19.
        assert!(t.cents > 10u64.pow(18), "{}", t.cents);
    }

    #[test]
    fn estimate_serializes_for_the_api() {
        let u = usage(StorageClass::Glacier, 1000, TIB);
        let e = PriceList::seed().estimate(&u, Bulk);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["price_list"], "seed");
        assert_eq!(v["tier"], "Bulk");
        assert_eq!(v["chosen"]["usd"], "2.59");
        assert_eq!(v["chosen"]["cents"], 259);
        assert_eq!(v["tiers"][0]["tier"], "Expedited");
        assert_eq!(v["tiers"][0]["classes"][0]["storage_class"], "GLACIER");
        assert_eq!(e.chosen.dollars(), 2.59);
        let back: CostEstimate = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);

        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"GLACIER":{{"objects":1000,"bytes":{TIB}}}}}"#)
        );
    }

    #[test]
    fn select_by_name_default_or_path() {
        assert_eq!(PriceList::select(None).unwrap().name, "aws");
        assert_eq!(PriceList::select(Some("  ")).unwrap().name, "aws");
        assert_eq!(PriceList::select(Some("SEED")).unwrap().name, "seed");
        assert_eq!(PriceList::select(Some("aws")).unwrap(), PriceList::aws());

        let dir = std::env::temp_dir().join(format!("prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custom.json");
        let custom = include_str!("../../prices/seed.json").replace("\"seed\"", "\"custom\"");
        std::fs::write(&file, custom).unwrap();
        let list = PriceList::select(Some(file.to_str().unwrap())).unwrap();
        assert_eq!(list.name, "custom");

        let err = PriceList::select(Some("/nonexistent/prices.json")).unwrap_err();
        assert_eq!(err.code(), "configuration_error");
        assert!(err.to_string().contains("PRICE_LIST"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn invalid_price_lists_are_config_errors() {
        let ok_rest = r#""DEEP_ARCHIVE": {"Standard": {"per_gb": "0.02", "per_1000_requests": "0.1"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}},
            "INTELLIGENT_TIERING": {"Standard": {"per_gb": "0", "per_1000_requests": "0"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}}"#;
        let list = |glacier: &str| format!(r#"{{"classes": {{"GLACIER": {glacier}, {ok_rest}}}}}"#);
        let good = list(
            r#"{"standard": {"per_gb": 0.01, "per_1000_requests": "0.05"}, "Bulk": {"per_gb": "0.0025", "per_1000_requests": "0.025"}}"#,
        );
        let parsed = PriceList::from_json_named(&good, "file.json").unwrap();
        assert_eq!(parsed.name, "file.json");
        assert_eq!(
            parsed.price(&StorageClass::Glacier, Standard).unwrap().0,
            TierPrice {
                per_gb_micros: 10_000,
                per_1000_requests_micros: 50_000
            }
        );
        // No Expedited entry → Standard with a fallback.
        assert!(parsed
            .price(&StorageClass::Glacier, Expedited)
            .unwrap()
            .1
            .is_some());
        assert!(parsed.price(&StorageClass::Standard, Bulk).is_none());

        for (glacier, want) in [
            (
                r#"{"Standard": {"per_gb": "0.01", "per_1000_requests": "0.05"}}"#,
                "GLACIER has no Bulk price",
            ),
            (
                r#"{"Standard": {"per_gb": "-1", "per_1000_requests": "0"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}}"#,
                "not a non-negative decimal",
            ),
            (
                r#"{"Standard": {"per_gb": "0.0000001", "per_1000_requests": "0"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}}"#,
                "more than 6 decimals",
            ),
            (
                r#"{"Fast": {"per_gb": "0", "per_1000_requests": "0"}}"#,
                "unknown tier",
            ),
            (
                r#"{"Standard": {"per_gb": true, "per_1000_requests": "0"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}}"#,
                "expected a decimal amount",
            ),
            (
                r#"{"Standard": {"per_gb": "0", "per_1k": "0"}, "Bulk": {"per_gb": "0", "per_1000_requests": "0"}}"#,
                "unknown field",
            ),
        ] {
            let err = PriceList::from_json_named(&list(glacier), "x").unwrap_err();
            assert_eq!(err.code(), "configuration_error");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        assert!(PriceList::from_json_named("not json", "x").is_err());
    }

    #[test]
    fn usage_accumulates_and_merges() {
        let mut a = Usage::default();
        a.add_object(&StorageClass::Glacier, 10);
        a.add_object(&StorageClass::Glacier, 5);
        let mut b = Usage::default();
        b.add_object(&StorageClass::DeepArchive, 7);
        b.add_object(&StorageClass::Glacier, 1);
        a.merge(&b);
        assert_eq!(
            a.classes[&StorageClass::Glacier],
            ClassUsage {
                objects: 3,
                bytes: 16
            }
        );
        assert_eq!(a.total_objects(), 4);
        assert_eq!(a.total_bytes(), 23);
        assert_eq!(format_usd(5), "0.05");
        assert_eq!(format_usd(123_456), "1234.56");
    }
}
