//! Group-commit throughput of a store: `write_batch` calls of `--batch`
//! messages spread over `--convs` direct conversations (each message with a
//! client_id, plus one cursor update per `--cursor-every` messages), then a
//! few reads. Prints messages persisted per second.
//!
//! ```text
//! cargo run --release -p im-store --example store_bench -- --url sqlite://bench.db
//! cargo run --release -p im-store --features postgres --example store_bench -- \
//!     --url postgres://postgres@127.0.0.1:5432/test --schema bench
//! ```
//! The SQLite file (or PostgreSQL schema) is removed first, so each run
//! starts empty.

use std::time::Instant;

use im_core::ids::{ConvId, UserId};
use im_core::store::{CursorUpdate, NewMessage};

struct Args {
    url: String,
    schema: Option<String>,
    batch: usize,
    batches: usize,
    convs: usize,
    cursor_every: usize,
    synchronous: String,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        url: "sqlite://store_bench.db".into(),
        schema: None,
        batch: 1000,
        batches: 50,
        convs: 500,
        cursor_every: 4,
        synchronous: "full".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{k}: {e}"));
        match k.as_str() {
            "--url" => a.url = v,
            "--schema" => a.schema = Some(v),
            "--batch" => a.batch = num(&v)?,
            "--batches" => a.batches = num(&v)?,
            "--convs" => a.convs = num(&v)?.max(1),
            "--cursor-every" => a.cursor_every = num(&v)?,
            "--synchronous" => a.synchronous = v,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn user(i: usize) -> Result<UserId, String> {
    UserId::parse(&format!("user{i:05}")).ok_or_else(|| "bad user name".to_string())
}

fn main() -> Result<(), String> {
    let a = parse()?;
    if let Some(path) = a.url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let options = im_store::StoreOptions {
        synchronous: a.synchronous.parse().map_err(|e| format!("{e}"))?,
        pg_schema: a.schema.clone(),
        ..Default::default()
    };
    #[cfg(feature = "postgres")]
    if let Some(schema) = &a.schema {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::PgConnection::establish(&a.url).map_err(|e| e.to_string())?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .map_err(|e| e.to_string())?;
    }
    let store = im_store::open(&a.url, &options).map_err(|e| e.to_string())?;

    // Conversation k is between user k and user k+1.
    let convs: Vec<(ConvId, UserId, UserId)> = (0..a.convs)
        .map(|k| {
            let (x, y) = (user(k)?, user(k + 1)?);
            Ok((ConvId::direct(&x, &y), x, y))
        })
        .collect::<Result<_, String>>()?;
    let body = "x".repeat(100);
    let mut n = 0usize;
    let mut total = 0usize;
    let start = Instant::now();
    let mut worst = 0f64;
    for b in 0..a.batches {
        let mut msgs = Vec::with_capacity(a.batch);
        let mut cursors = Vec::new();
        for i in 0..a.batch {
            let (conv, x, y) = &convs[(n * 7919) % convs.len()];
            let from = if n & 1 == 0 { x } else { y };
            msgs.push(NewMessage {
                conv: conv.clone(),
                from: from.clone(),
                device: "phone".into(),
                body: body.clone(),
                client_id: Some(format!("c{n}")),
                attachment: None,
                now: 1_700_000_000_000 + n as i64,
                guard: None,
            });
            if a.cursor_every > 0 && i % a.cursor_every == 0 {
                let to = if n & 1 == 0 { y } else { x };
                cursors.push(CursorUpdate {
                    user: to.clone(),
                    device: "phone".into(),
                    conv: conv.clone(),
                    delivered: (b * a.batch / convs.len()) as u64,
                    read: i % (2 * a.cursor_every) == 0,
                });
            }
            n += 1;
        }
        let t = Instant::now();
        let (appended, _) = store
            .write_batch(&msgs, &cursors)
            .map_err(|e| e.to_string())?;
        worst = worst.max(t.elapsed().as_secs_f64());
        total += appended.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {} messages in {} batches of {} over {} conversations: {:.0} msg/s \
         (mean {:.1} ms, worst {:.1} ms per batch)",
        a.url,
        total,
        a.batches,
        a.batch,
        a.convs,
        total as f64 / secs,
        secs * 1000.0 / a.batches as f64,
        worst * 1000.0
    );

    let t = Instant::now();
    let mut listed = 0;
    for (_, x, _) in convs.iter().take(200) {
        listed += store
            .conversations(x, "phone")
            .map_err(|e| e.to_string())?
            .len();
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / convs.len().min(200) as f64;
    println!("conversations(): {per:.3} ms per call ({listed} rows)");
    let t = Instant::now();
    for (conv, _, _) in convs.iter().take(200) {
        store
            .messages_before(conv, None, 50)
            .map_err(|e| e.to_string())?;
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / convs.len().min(200) as f64;
    println!("messages_before(None, 50): {per:.3} ms per call");
    Ok(())
}
