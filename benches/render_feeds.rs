//! How long a change takes to reach the feeds: `render_all` over a library of
//! 1,000 and 10,000 resources in 8 categories, then `FeedCache::publish`
//! (check, hash and gzip every feed) into a fresh cache.

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use tidings::feeds::{DEFAULT_MAX_ITEMS, FeedCache, FeedInput, FeedSite, render_all};
use tidings::model::{Block, Category, Resource, ResourceId, Summary};
use url::Url;

const CATEGORIES: [&str; 8] = [
    "Leaflets",
    "Strategies and plans",
    "Training & events",
    "Reports",
    "Mental health",
    "Children and families",
    "Older people",
    "Other",
];

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 30, 12, 0, 0)
        .single()
        .expect("a valid fixed date")
}

/// `n` resources, newest first, spread over the categories, with summaries of
/// a paragraph and a list, a download on every fifth.
fn library(n: usize) -> Vec<Resource> {
    (0..n)
        .map(|i| {
            let seen = start() - Duration::hours(i as i64);
            let category = Category::new(CATEGORIES[i % CATEGORIES.len()]);
            let url = |path: String| Url::parse(&format!("https://www.example.org/{path}")).ok();
            Resource {
                id: ResourceId(format!("{i:016x}")),
                source: "library".into(),
                identity: format!("library:{i}"),
                guid: format!("urn:tidings:{i:016x}"),
                title: format!("Resource {i}: services & support <{}>", category.name),
                link: url(format!("library/{i}")),
                summary: Summary {
                    blocks: vec![
                        Block::Paragraph("A paragraph about the resource. ".repeat(8)),
                        Block::List(vec!["First point".into(), "Second & last".into()]),
                    ],
                },
                date: None,
                category,
                download: if i % 5 == 0 {
                    url(format!("files/{i}.pdf"))
                } else {
                    None
                },
                fingerprint: format!("{i}"),
                first_seen: seen,
                updated: seen,
                withdrawn_at: None,
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let site = FeedSite {
        title: "Tower Hamlets Together — Resource Library".into(),
        base_url: Url::parse("https://feeds.example.org/").expect("a valid URL"),
        description: "New and changed resources".into(),
    };
    let categories: Vec<Category> = CATEGORIES.into_iter().map(Category::new).collect();
    let mut group = c.benchmark_group("feeds");
    for n in [1_000, 10_000] {
        let resources = library(n);
        let input = FeedInput {
            site: &site,
            resources: &resources,
            categories: &categories,
            max_items: DEFAULT_MAX_ITEMS,
        };
        group.bench_function(BenchmarkId::new("render_all", n), |b| {
            b.iter(|| render_all(black_box(&input)))
        });
        let rendered = render_all(&input);
        group.bench_function(BenchmarkId::new("publish", n), |b| {
            b.iter_batched(
                || (FeedCache::new(), rendered.clone()),
                |(cache, feeds)| cache.publish(feeds, start()),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("render_and_republish_unchanged", n), |b| {
            let cache = FeedCache::new();
            let mut now = start();
            b.iter(|| {
                now += Duration::seconds(1);
                cache.publish(render_all(black_box(&input)), now)
            })
        });
    }
    group.finish();
}

criterion_group!(render_feeds, benches);
criterion_main!(render_feeds);
