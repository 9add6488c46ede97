//! Sends: checked against the topic's type, to the queue a message group
//! maps to (or round robin), on a broker this proxy serves.

use std::sync::atomic::Ordering;

use mq_auth::model::{Action, Target};
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use mq_proto::nameserver::v1 as names;
use tonic::Request;

use crate::backend::Call;
use crate::message;
use crate::route;
use crate::service::MessagingProxy;
use crate::status::{self, Refusal};
use crate::transaction;

impl MessagingProxy {
    /// Picks the broker and queue of a send: a message group always maps
    /// to one queue (its order holds), other sends go round robin.
    pub(crate) fn pick_queue(
        &self,
        route: &names::QueryRouteResponse,
        group: Option<&str>,
    ) -> Option<(String, u32)> {
        let writable: Vec<&names::QueueData> = route
            .queues
            .iter()
            .filter(|q| {
                q.write_queue_count > 0
                    && mq_common::Perm::from_bits("perm", q.perm).is_ok_and(|p| p.writable())
                    && route
                        .brokers
                        .iter()
                        .any(|b| b.broker_name == q.broker_name && self.backend.serves(b))
            })
            .collect();
        if writable.is_empty() {
            return None;
        }
        let slots: Vec<(String, u32)> = writable
            .iter()
            .flat_map(|q| (0..q.write_queue_count).map(|id| (q.broker_name.clone(), id)))
            .collect();
        let index = match group {
            Some(group) => stable_hash(group) as usize % slots.len(),
            None => self.next_queue.fetch_add(1, Ordering::Relaxed) % slots.len(),
        };
        slots.into_iter().nth(index)
    }

    pub(crate) async fn send_inner(
        &self,
        request: Request<v2::SendMessageRequest>,
    ) -> Result<Vec<v2::SendResultEntry>, Refusal> {
        let topic = request
            .get_ref()
            .messages
            .first()
            .and_then(|m| m.topic.as_ref())
            .map_or_else(String::new, |t| t.name.clone());
        self.authorize(&request, &[Action::Pub], Target::topic(&topic))?;
        let route = self.route(&topic).await?;
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let out = message::outgoing(
            request.into_inner().messages,
            route::message_type(&route),
            self.settings.max_body_size,
        )?;
        let (broker_name, queue_id) = self
            .pick_queue(&route, out.message_group.as_deref())
            .ok_or_else(|| {
                Refusal::new(
                    Code::Forbidden,
                    format!("topic {topic:?} has no writable queue served here"),
                )
            })?;
        if route::message_type(&route) == mq_common::MessageType::Transaction {
            return self.send_half(&call, &broker_name, queue_id, out).await;
        }
        let response = self
            .backend
            .send(
                &call,
                &broker_name,
                broker::SendBatchRequest {
                    topic: out.topic,
                    queue_id,
                    messages: out.messages,
                    ..Default::default()
                },
            )
            .await?;
        Ok(response.results.into_iter().map(send_entry).collect())
    }
}

impl MessagingProxy {
    /// A transactional message: its half message, one per request (as the
    /// official clients send them). The transaction id names the broker,
    /// so that EndTransaction finds it.
    async fn send_half(
        &self,
        call: &Call,
        broker_name: &str,
        queue_id: u32,
        out: message::Outgoing,
    ) -> Result<Vec<v2::SendResultEntry>, Refusal> {
        let [message] = <[broker::Message; 1]>::try_from(out.messages).map_err(|_| {
            Refusal::new(
                Code::BadRequest,
                "a transactional message is sent alone: one message per SendMessage request",
            )
        })?;
        let response = self
            .backend
            .send_half(
                call,
                broker_name,
                broker::SendHalfMessageRequest {
                    message: Some(message),
                    queue_id,
                    producer_group: transaction::producer_group(&out.topic),
                },
            )
            .await?;
        let mut entry = send_entry(response.result.unwrap_or_default());
        entry.transaction_id = transaction::id(broker_name, &response.transaction_id);
        Ok(vec![entry])
    }
}

fn send_entry(result: broker::SendResult) -> v2::SendResultEntry {
    let status = match broker::SendStatus::try_from(result.status) {
        Ok(broker::SendStatus::SendOk) => status::ok(),
        Ok(broker::SendStatus::FlushDiskTimeout) => status::failed(
            Code::MasterPersistenceTimeout,
            "stored, but the disk did not confirm it in time",
        ),
        Ok(broker::SendStatus::FlushSlaveTimeout) => status::failed(
            Code::SlavePersistenceTimeout,
            "stored on the master, but its replicas did not confirm it in time",
        ),
        Ok(broker::SendStatus::SlaveNotAvailable) => status::failed(
            Code::HaNotAvailable,
            "stored on the master only: too few replicas are in sync",
        ),
        _ => status::failed(Code::InternalServerError, "unknown send status"),
    };
    v2::SendResultEntry {
        status: Some(status),
        message_id: result.message_id,
        transaction_id: String::new(),
        offset: result.queue_offset as i64,
        recall_handle: String::new(),
    }
}

/// FNV-1a: the same group maps to the same queue in every process.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
