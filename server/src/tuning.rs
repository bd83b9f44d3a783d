//! `Tuning`: every knob of the server in one place — the hub's, the voice peer's, ingestion's
//! (rate limit, the group-commit writer's batch and queue, retention) and the connection limits.
//! `Tuning::default()` is what the server runs with when no flag is given; `from_config` reads
//! the flags. Tests and benchmarks change the fields they need.

use std::time::Duration;

use crate::hub::HubConfig;
use crate::ingest::ratelimit::Rate;
use crate::ingest::writer::WriterConfig;
use crate::ingest::IngestConfig;
use crate::serve::Limits;
use crate::voice::VoiceConfig;
use crate::Config;

/// Limits, timings and batch sizes; identities and secrets (projects, tokens, origins, folders)
/// stay in [`Config`].
#[derive(Debug, Clone)]
pub struct Tuning {
    /// The WebSocket hub.
    pub hub: HubConfig,
    /// The voice peer.
    pub voice: VoiceConfig,
    /// Ingestion: rate limit, writer, retention.
    pub ingest: IngestConfig,
    /// Connections at once (overall and per IP) and the request-head deadline.
    pub limits: Limits,
    /// How long a request's body may take to arrive.
    pub body_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            hub: HubConfig::default(),
            voice: VoiceConfig::default(),
            ingest: IngestConfig::default(),
            limits: Limits::default(),
            body_timeout: Duration::from_secs(15),
        }
    }
}

impl Tuning {
    /// The defaults with every flag of `config` that sets a knob.
    pub fn from_config(config: &Config) -> Self {
        Self {
            hub: HubConfig::from_config(config),
            voice: VoiceConfig::from_config(config),
            ingest: IngestConfig {
                rate: Rate {
                    per_sec: config.rate_limit,
                    burst: config.rate_limit_burst,
                },
                writer: WriterConfig {
                    max_batch: config.ingest_batch as usize,
                    max_wait: config.ingest_batch_wait,
                    queue: config.ingest_queue as usize,
                },
                retention: config.retention,
                health_retention: config.health_retention,
            },
            limits: Limits {
                max_connections: config.max_connections,
                max_per_ip: config.max_connections_per_ip,
                header_timeout: config.header_timeout,
            },
            body_timeout: config.body_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn no_flags_give_the_defaults() {
        let from_flags = Tuning::from_config(&Config::parse_from(["vigil-server"]));
        let default = Tuning::default();
        assert_eq!(from_flags.hub, default.hub);
        assert_eq!(from_flags.voice, default.voice);
        assert_eq!(from_flags.ingest, default.ingest);
        assert_eq!(from_flags.limits, default.limits);
        assert_eq!(from_flags.body_timeout, default.body_timeout);
    }

    #[test]
    fn flags_reach_their_knobs() {
        let t = Tuning::from_config(&Config::parse_from([
            "vigil-server",
            "--ws-max-connections",
            "7",
            "--voice-max-sessions",
            "3",
            "--rate-limit",
            "5",
            "--ingest-batch",
            "32",
            "--ingest-queue",
            "100",
            "--max-connections-per-ip",
            "9",
            "--retention",
            "1d",
        ]));
        assert_eq!(t.hub.max_sessions, 7);
        assert_eq!(t.voice.max_sessions, 3);
        assert_eq!(t.ingest.rate.per_sec, 5.0);
        assert_eq!(t.ingest.writer.max_batch, 32);
        assert_eq!(t.ingest.writer.queue, 100);
        assert_eq!(t.limits.max_per_ip, 9);
        assert_eq!(t.ingest.retention, Duration::from_secs(86_400));
    }
}
