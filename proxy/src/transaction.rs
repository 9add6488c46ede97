//! Transactional messages for RocketMQ 5 clients: a TRANSACTION message is
//! stored as a half message on its broker (`send.rs`), EndTransaction
//! commits or rolls it back, and the brokers' checks of open transactions
//! reach producers that publish the topic as
//! `RecoverOrphanedTransactionCommand`s on their Telemetry stream.
//!
//! RocketMQ 5 producers have no group, so the proxy gives each topic one
//! (`%TX%{topic}`): the producers that publish a topic answer for its
//! transactions. The transaction id a client sees names the broker
//! (`broker@id`), so any proxy finds it.

use std::collections::HashSet;

use mq_auth::model::{Action, Target};
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use tokio::sync::mpsc;
use tonic::{Request, Status};

use crate::backend::Call;
use crate::message;
use crate::route;
use crate::service::MessagingProxy;
use crate::status::Refusal;

/// What the producer group of a topic's transactions starts with.
pub const TOPIC_GROUP_PREFIX: &str = "%TX%";

/// The producer group of `topic`'s transactions on the brokers.
pub fn producer_group(topic: &str) -> String {
    let group = format!("{TOPIC_GROUP_PREFIX}{topic}");
    if group.len() <= 127 {
        return group;
    }
    // Long topic names: a stable digest keeps it within the name limit.
    let digest = topic.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = topic.chars().take(100).collect();
    format!("{TOPIC_GROUP_PREFIX}{head}-{digest:016x}")
}

/// The id a client sees: the broker and its transaction id.
pub fn id(broker_name: &str, transaction_id: &str) -> String {
    format!("{broker_name}@{transaction_id}")
}

/// The broker and its transaction id, from a client's transaction id.
pub fn parse(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('@')
        .filter(|(b, t)| !b.is_empty() && !t.is_empty())
}

impl MessagingProxy {
    pub(crate) async fn end_transaction_inner(
        &self,
        request: Request<v2::EndTransactionRequest>,
    ) -> Result<(), Refusal> {
        let body = request.get_ref();
        let topic = body
            .topic
            .as_ref()
            .map_or("", |t| t.name.as_str())
            .to_owned();
        self.authorize(&request, &[Action::Pub], Target::topic(&topic))?;
        let (broker_name, transaction_id) = parse(&body.transaction_id).ok_or_else(|| {
            Refusal::new(
                Code::InvalidTransactionId,
                format!(
                    "{:?} is not a transaction id of this cluster (as SendMessage answered it)",
                    body.transaction_id
                ),
            )
        })?;
        let outcome = match v2::TransactionResolution::try_from(body.resolution) {
            Ok(v2::TransactionResolution::Commit) => broker::TransactionOutcome::Commit,
            Ok(v2::TransactionResolution::Rollback) => broker::TransactionOutcome::Rollback,
            _ => {
                return Err(Refusal::new(
                    Code::BadRequest,
                    "resolution must be COMMIT or ROLLBACK",
                ));
            }
        };
        let end = broker::EndTransactionRequest {
            producer_group: producer_group(&topic),
            transaction_id: transaction_id.to_owned(),
            message_id: body.message_id.clone(),
            outcome: outcome as i32,
            from_check: body.source == v2::TransactionSource::SourceServerCheck as i32,
        };
        let call = Call {
            extensions: request.extensions().clone(),
        };
        self.backend
            .end_transaction(&call, broker_name, end)
            .await?;
        Ok(())
    }

    /// Keeps producer sessions with the brokers of `info`'s transactional
    /// topics and turns their checks into recovery commands on `commands`
    /// (the client's Telemetry stream), until the stream closes. Topics in
    /// `started` already have theirs.
    pub(crate) async fn recover_for(
        &self,
        call: &Call,
        client_id: &str,
        topics: &[String],
        started: &mut HashSet<String>,
        commands: &mpsc::Sender<Result<v2::TelemetryCommand, Status>>,
    ) {
        for topic in topics {
            if started.contains(topic) {
                continue;
            }
            let Ok(route) = self.backend.route(topic).await else {
                continue;
            };
            if route::message_type(&route) != mq_common::MessageType::Transaction {
                continue;
            }
            started.insert(topic.clone());
            for data in route.brokers.iter().filter(|b| self.backend.serves(b)) {
                let session = broker::ProducerSessionRequest {
                    producer_group: producer_group(topic),
                    client_id: client_id.to_owned(),
                };
                let checks = self
                    .backend
                    .producer_session(call, &data.broker_name, session)
                    .await;
                let checks = match checks {
                    Ok(checks) => checks,
                    Err(err) => {
                        tracing::debug!(topic, broker = %data.broker_name, error = %err, "cannot open a transaction session for a RocketMQ 5 producer");
                        continue;
                    }
                };
                tokio::spawn(forward(checks, data.broker_name.clone(), commands.clone()));
            }
        }
    }
}

/// Forwards a broker's checks as recovery commands while the client's
/// stream is open.
async fn forward(
    mut checks: crate::backend::CheckStream,
    broker_name: String,
    commands: mpsc::Sender<Result<v2::TelemetryCommand, Status>>,
) {
    use futures_util::StreamExt;
    loop {
        let check = tokio::select! {
            check = checks.next() => check,
            () = commands.closed() => None,
        };
        let Some(Ok(check)) = check else { return };
        let popped = broker::PoppedMessage {
            message: check.message,
            ..Default::default()
        };
        let Some(message) = message::incoming(popped, "", mq_common::MessageType::Transaction)
        else {
            continue;
        };
        let command = v2::TelemetryCommand {
            status: None,
            command: Some(
                v2::telemetry_command::Command::RecoverOrphanedTransactionCommand(
                    v2::RecoverOrphanedTransactionCommand {
                        message: Some(message),
                        transaction_id: id(&broker_name, &check.transaction_id),
                    },
                ),
            ),
        };
        if commands.send(Ok(command)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_broker_and_groups_fit_the_name_limit() {
        let id = id("broker-a", "000000000000002A");
        assert_eq!(parse(&id), Some(("broker-a", "000000000000002A")));
        for bad in ["", "@x", "broker@", "no-at-sign"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(producer_group("orders"), "%TX%orders");
        let long = "t".repeat(127);
        let group = producer_group(&long);
        assert!(group.len() <= 127 && group.starts_with("%TX%t"), "{group}");
        assert_ne!(group, producer_group(&"t".repeat(126)));
        // Not a topic name at all: no panic, whatever it makes.
        let _ = producer_group(&"é".repeat(200));
    }
}
