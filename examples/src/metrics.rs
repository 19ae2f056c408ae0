//! The example server's Prometheus exporter: installs the recorder that
//! im-core's metrics (see `im_core::telemetry`) go to, and renders them
//! with the process's own (memory, CPU, open files) for `GET /metrics`.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Installs the global recorder; returns what renders the text format.
pub fn install() -> anyhow::Result<im_transport_ws::RenderMetrics> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("im_store_batch_size".into()),
            &[
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("im_store_batch_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ],
        )?
        .install_recorder()?;
    let process = metrics_process::Collector::default();
    process.describe();
    Ok(Arc::new(move || {
        process.collect();
        handle.render()
    }))
}
