use im_tests::*;
use serde_json::json;
#[tokio::test]
async fn calib() {
    for cost in [6u32, 7, 8, 9] {
        let srv = TestServer::start_with(|c| {
            c.auth.bcrypt_cost = cost;
            c.pool.bcrypt_threads = 1;
        });
        let mut c = srv.client().await;
        let t = std::time::Instant::now();
        c.ok(json!({"type":"register","username":"alice","password":PASSWORD}))
            .await;
        let t1 = t.elapsed();
        let t = std::time::Instant::now();
        c.err(
            json!({"type":"login","username":"alice","password":"wrongwrong"}),
            "invalid_credentials",
        )
        .await;
        eprintln!("cost {cost}: register {:?} login {:?}", t1, t.elapsed());
    }
}
