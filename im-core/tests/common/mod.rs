//! What every im-core integration test shares: the one place the core is
//! built for tests (test defaults: cheap bcrypt), and a protocol client on
//! the in-memory transport ([`im_core::testing`]). Included by each test
//! file with `mod common;` (the end-to-end harness in `tests/` cannot be
//! used here: it depends on im-core, so im-core depending on it would give
//! two different `Hub` types).

#![allow(dead_code)] // each test file uses only part of it

use std::sync::Arc;
use std::time::Duration;

use im_core::testing::MemoryClient;
use im_core::{Config, Hub, MemoryStore, Store};
use serde_json::{json, Value};

/// The password every test user gets.
pub const PASSWORD: &str = "password123";

/// A hub on a new memory store with the test configuration changed by `f`.
pub fn hub(f: impl FnOnce(&mut Config)) -> Hub {
    hub_on(Arc::new(MemoryStore::new()), f)
}

/// The one place these tests build the core: the test defaults (cheap
/// bcrypt), then `f`, then the hub on `store`.
pub fn hub_on(store: Arc<dyn Store>, f: impl FnOnce(&mut Config)) -> Hub {
    let mut c = Config::default();
    c.auth.bcrypt_cost = 4;
    // The actor tests pipeline far past the default request rate.
    c.limits.frames_per_sec = 1_000_000;
    c.limits.frames_burst = 1_000_000;
    f(&mut c);
    let blobs = Arc::new(im_core::blob::MemoryBlobStore::new());
    Hub::builder(store, blobs).config(c).start()
}

/// Waits (up to 10 s) until the hub's census satisfies `ok`; returns it.
pub async fn until(hub: &Hub, ok: impl Fn(&im_core::hub::Census) -> bool) -> im_core::hub::Census {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let c = hub.census();
        if ok(&c) || tokio::time::Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A protocol client on the in-memory transport.
pub struct Client {
    /// The connection.
    pub inner: MemoryClient,
    next: i64,
    /// Frames read while waiting for a reply.
    pub events: Vec<Value>,
}

impl Client {
    /// Connects and reads `hello`.
    pub async fn new(hub: &Hub) -> Client {
        let mut inner = MemoryClient::connect(hub);
        let hello = recv(&mut inner).await.expect("hello");
        assert_eq!(hello["type"], "hello");
        Client {
            inner,
            next: 1,
            events: vec![],
        }
    }

    /// Sends `v` with a fresh `id`; returns its reply, keeping the frames
    /// before it in `events`.
    pub async fn req(&mut self, mut v: Value) -> Value {
        let id = self.next;
        self.next += 1;
        v["id"] = json!(id);
        self.inner.send(&v.to_string()).await.expect("send");
        loop {
            let f = recv(&mut self.inner).await.expect("reply");
            if f["id"] == json!(id) {
                return f;
            }
            self.events.push(f);
        }
    }

    /// Registers and logs in; returns the frames between roster and synced.
    pub async fn login(hub: &Hub, name: &str, device: &str) -> (Client, Vec<Value>) {
        let mut c = Client::new(hub).await;
        c.req(json!({"type":"register","username":name,"password":PASSWORD}))
            .await;
        let ok = c
            .req(json!({"type":"login","username":name,"password":PASSWORD,"device":device}))
            .await;
        assert_eq!(ok["type"], "ok", "{ok}");
        let roster = recv(&mut c.inner).await.expect("roster");
        assert_eq!(roster["type"], "roster");
        let mut replay = vec![];
        loop {
            let f = recv(&mut c.inner)
                .await
                .unwrap_or_else(|| panic!("closed before synced after {replay:?}"));
            if f["type"] == "synced" {
                break;
            }
            replay.push(f);
        }
        (c, replay)
    }
}

/// The next frame (`None` once the server closed); panics after 10 s.
pub async fn recv(c: &mut MemoryClient) -> Option<Value> {
    let s = tokio::time::timeout(Duration::from_secs(10), c.recv())
        .await
        .expect("frame within 10 s")?;
    Some(serde_json::from_str(&s).expect("json"))
}

/// Makes the two users mutual contacts.
pub async fn friends(a: &mut Client, b: &mut Client, bname: &str, aname: &str) {
    assert_eq!(
        a.req(json!({"type":"contact.add","user":bname})).await["type"],
        "ok"
    );
    assert_eq!(
        b.req(json!({"type":"contact.accept","user":aname})).await["type"],
        "ok"
    );
}
