//! Telemetry windows: from a JSON file or from the Prometheus HTTP API.

pub mod prometheus;
pub mod window;

pub use prometheus::{PrometheusError, PrometheusSource};
pub use window::{Event, Series, TelemetryWindow, WindowError};
