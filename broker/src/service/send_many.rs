//! `SendMany`: the sends a producer queued up while its previous request
//! was in flight, in one request. Each is authorized, checked and answered
//! on its own, exactly as `SendMessage` or `SendBatch` would; a refusal of
//! one is its outcome and leaves the others untouched. Those that pass are
//! stored together, in one append (`together`).

use std::time::Instant;

use mq_auth::model::{Action, Target};
use mq_common::FieldError;
use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::send_item::Send as Item;
use tonic::{Request, Status};

use super::send::lost_answer;
use super::together::next_outcome;
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
        // Each send is checked on its own; those that pass are stored
        // together, in the request's order, in one append.
        let mut checked = Vec::with_capacity(count);
        let mut prepared = Vec::with_capacity(count);
        for (i, (item, denied)) in sends.into_iter().zip(denials).enumerate() {
            let send = match (denied, item.send) {
                (Some(status), _) => {
                    checked.push(Checked::Denied(status));
                    continue;
                }
                (None, Some(Item::Message(send))) => self.send.prepare_message(send, peer),
                (None, Some(Item::Batch(batch))) => self.send.prepare_batch(batch, peer),
                (None, None) => {
                    Err(FieldError::new(format!("sends[{i}].send"), "is required").into())
                }
            };
            checked.push(match send {
                Ok(send) => {
                    prepared.push(send);
                    Checked::Prepared
                }
                Err(err) => Checked::Refused(err),
            });
        }
        let mut stored = self.send.store_together(prepared).await.into_iter();
        let outcomes = checked
            .into_iter()
            .map(|checked| {
                let result = match checked {
                    Checked::Denied(status) => return refusal(&status, true),
                    Checked::Refused(err) => Err(err),
                    Checked::Prepared => next_outcome(&mut stored)
                        .and_then(|results| lost_answer().map(|()| results)),
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
            })
            .collect();
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

/// What checking a send found.
enum Checked {
    /// The caller may not publish to its topic.
    Denied(Status),
    /// It breaks a rule: refused before anything is stored.
    Refused(BrokerError),
    /// Stored with the others.
    Prepared,
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
