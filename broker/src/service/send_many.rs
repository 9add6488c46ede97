//! `SendMany`: the sends a producer queued up while its previous request
//! was in flight, in one request. Each is authorized, stored and answered
//! on its own, exactly as `SendMessage` or `SendBatch` would; a refusal of
//! one is its outcome and leaves the others untouched.

use std::time::Instant;

use mq_auth::model::{Action, Target};
use mq_common::FieldError;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::send_item::Send as Item;
use tonic::{Request, Status};

use super::{BrokerService, Path};
use crate::error::BrokerError;

/// Most sends one request may carry (each may be a batch of its own).
pub const MAX_SENDS: usize = 4096;

impl BrokerService {
    pub(super) async fn store_many(
        &self,
        request: Request<pb::SendManyRequest>,
    ) -> Result<pb::SendManyResponse, Status> {
        let count = request.get_ref().sends.len();
        if count == 0 {
            return Err(BrokerError::from(FieldError::new("sends", "must not be empty")).into());
        }
        if count > MAX_SENDS {
            return Err(BrokerError::from(FieldError::new(
                "sends",
                format!("{count} sends in one request; at most {MAX_SENDS}"),
            ))
            .into());
        }
        self.metrics.sent_together(count);
        let denials = self.authorize(&request);
        let peer = request.remote_addr();
        let started = Instant::now();
        let sends = request.into_inner().sends;
        // Each send's first poll appends it: join_all polls them in order,
        // so sends to one queue are stored in the request's order (unless
        // one waits for room under backpressure first).
        let outcomes =
            futures_util::future::join_all(sends.into_iter().zip(denials).enumerate().map(
                |(i, (item, denied))| async move {
                    if let Some(status) = denied {
                        return refusal(&status, true);
                    }
                    let result = match item.send {
                        Some(Item::Message(send)) => {
                            self.send.send(send, peer).await.map(|r| vec![r])
                        }
                        Some(Item::Batch(batch)) => self.send.send_batch(batch, peer).await,
                        None => {
                            Err(FieldError::new(format!("sends[{i}].send"), "is required").into())
                        }
                    };
                    match self.observe(result, started, Path::Send) {
                        Ok(results) => pb::SendOutcome {
                            results,
                            refusal: None,
                        },
                        Err(err) => {
                            let nothing_stored = err.nothing_stored();
                            refusal(&Status::from(err), nothing_stored)
                        }
                    }
                },
            ))
            .await;
        Ok(pb::SendManyResponse { outcomes })
    }

    /// Whether the caller may publish to each send's topic: `Some(refusal)`
    /// for a send it may not (decided once per topic in a row).
    fn authorize(&self, request: &Request<pb::SendManyRequest>) -> Vec<Option<Status>> {
        let mut last: Option<(&str, Option<Status>)> = None;
        request
            .get_ref()
            .sends
            .iter()
            .map(|item| {
                let topic = match &item.send {
                    Some(Item::Message(send)) => super::topic_of(send.message.as_ref()),
                    Some(Item::Batch(batch)) => batch.topic.as_str(),
                    None => "",
                };
                if let Some((seen, decision)) = &last
                    && *seen == topic
                {
                    return decision.clone();
                }
                let decision = self
                    .guard
                    .check(request, Action::Pub, Target::topic(topic))
                    .err();
                last = Some((topic, decision.clone()));
                decision
            })
            .collect()
    }
}

fn refusal(status: &Status, nothing_stored: bool) -> pb::SendOutcome {
    pb::SendOutcome {
        results: Vec::new(),
        refusal: Some(pb::SendRefusal {
            code: status.code() as i32,
            message: status.message().to_owned(),
            nothing_stored,
        }),
    }
}
