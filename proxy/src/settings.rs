//! The server's answer to a client's settings on the Telemetry stream:
//! what RocketMQ 5 clients take from the server rather than from their
//! own configuration (retry backoff, body limit, long polling, FIFO).

use std::time::Duration;

use mq_proto::apache::rocketmq::v2;

/// The values the proxy hands every client.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Bodies above this are refused.
    pub max_body_size: usize,
    /// A request's timeout, long polls excepted.
    pub request_timeout: Duration,
    /// How long a receive waits for messages at most.
    pub long_polling_timeout: Duration,
    /// Messages a push consumer receives per call.
    pub receive_batch_size: i32,
    /// Deliveries of one message before it goes to the dead-letter topic.
    pub max_delivery_attempts: i32,
    /// The shortest invisible time a receive may ask for.
    pub min_invisible: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_body_size: 4 << 20,
            request_timeout: Duration::from_secs(3),
            long_polling_timeout: Duration::from_secs(20),
            receive_batch_size: 32,
            max_delivery_attempts: 16,
            min_invisible: Duration::from_secs(10),
        }
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl ServerSettings {
    /// The answer to `client`'s settings: its own, with the server's
    /// values filled in; `fifo` when a topic it subscribes to is FIFO (a
    /// push consumer then hands a message group's messages over in order).
    pub fn answer(&self, client: &v2::Settings, fifo: bool) -> v2::Settings {
        let mut settings = client.clone();
        settings.request_timeout = Some(duration(self.request_timeout));
        match &mut settings.pub_sub {
            Some(v2::settings::PubSub::Publishing(publishing)) => {
                publishing.max_body_size = self.max_body_size as i32;
                publishing.validate_message_type = true;
                // Producers retry a failed send three times with a
                // growing pause, as RocketMQ's proxy tells them.
                settings.backoff_policy = Some(v2::RetryPolicy {
                    max_attempts: 3,
                    strategy: Some(v2::retry_policy::Strategy::ExponentialBackoff(
                        v2::ExponentialBackoff {
                            initial: Some(duration(Duration::from_millis(10))),
                            max: Some(duration(Duration::from_secs(1))),
                            multiplier: 2.0,
                        },
                    )),
                });
            }
            Some(v2::settings::PubSub::Subscription(subscription)) => {
                subscription.fifo = Some(fifo);
                subscription.receive_batch_size = Some(self.receive_batch_size);
                subscription.long_polling_timeout = Some(duration(self.long_polling_timeout));
                // A failed message comes back after RocketMQ's delay levels.
                settings.backoff_policy = Some(v2::RetryPolicy {
                    max_attempts: self.max_delivery_attempts,
                    strategy: Some(v2::retry_policy::Strategy::CustomizedBackoff(
                        v2::CustomizedBackoff {
                            next: RETRY_DELAYS_S
                                .iter()
                                .map(|s| duration(Duration::from_secs(*s)))
                                .collect(),
                        },
                    )),
                });
            }
            None => {}
        }
        settings
    }
}

/// RocketMQ's delays between deliveries of a message that failed: 10s
/// 30s 1m 2m ... 2h.
const RETRY_DELAYS_S: [u64; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_learns_the_body_limit_and_its_backoff() {
        let client = v2::Settings {
            client_type: Some(v2::ClientType::Producer as i32),
            pub_sub: Some(v2::settings::PubSub::Publishing(v2::Publishing::default())),
            ..Default::default()
        };
        let answer = ServerSettings::default().answer(&client, false);
        let Some(v2::settings::PubSub::Publishing(publishing)) = answer.pub_sub else {
            panic!("publishing settings expected: {answer:?}");
        };
        assert_eq!(publishing.max_body_size, 4 << 20);
        assert!(publishing.validate_message_type);
        assert_eq!(answer.backoff_policy.unwrap().max_attempts, 3);
    }

    #[test]
    fn a_consumer_learns_long_polling_and_its_redelivery_delays() {
        let client = v2::Settings {
            client_type: Some(v2::ClientType::SimpleConsumer as i32),
            pub_sub: Some(v2::settings::PubSub::Subscription(
                v2::Subscription::default(),
            )),
            ..Default::default()
        };
        let answer = ServerSettings::default().answer(&client, true);
        let Some(v2::settings::PubSub::Subscription(subscription)) = answer.pub_sub else {
            panic!("subscription settings expected: {answer:?}");
        };
        assert_eq!(subscription.long_polling_timeout.unwrap().seconds, 20);
        assert_eq!(subscription.fifo, Some(true));
        let policy = answer.backoff_policy.unwrap();
        assert_eq!(policy.max_attempts, 16);
        let Some(v2::retry_policy::Strategy::CustomizedBackoff(backoff)) = policy.strategy else {
            panic!("customized backoff expected");
        };
        assert_eq!(backoff.next.len(), 16);
    }
}
