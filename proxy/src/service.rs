//! `apache.rocketmq.v2.MessagingService`: one handler per RPC. Every
//! handler authorizes its caller first (the guard authenticated the call
//! before it got here) and answers failures in the response's status, as
//! the official clients expect.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use futures_util::Stream;
use mq_auth::guard::Guard;
use mq_auth::model::{Action, Target};
use mq_proto::apache::rocketmq::v2::messaging_service_server::MessagingService;
use mq_proto::apache::rocketmq::v2::{self as v2, Code};
use mq_proto::broker::v1 as broker;
use mq_proto::nameserver::v1 as names;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::backend::{Backend, Call};
use crate::clients::{Clients, client_id};
use crate::members::{client_info, header};
use crate::route;
use crate::settings::ServerSettings;
use crate::status::{self, Refusal};

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serves RocketMQ 5's protocol over a [`Backend`].
#[derive(Clone)]
pub struct MessagingProxy {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) guard: Guard,
    pub(crate) settings: ServerSettings,
    pub(crate) clients: Arc<Clients>,
    /// Round robin over queues for sends without a message group.
    pub(crate) next_queue: Arc<AtomicUsize>,
    /// Routes asked for lately: a send or receive does not ask the
    /// nameservers each time.
    pub(crate) routes: Arc<dashmap::DashMap<String, (Instant, names::QueryRouteResponse)>>,
}

/// How long a route is reused (a new queue or broker shows within it; the
/// nameservers learn of them no faster than their brokers' registrations).
const ROUTE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for MessagingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingProxy")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl MessagingProxy {
    pub fn new(backend: Arc<dyn Backend>, guard: Guard, settings: ServerSettings) -> Self {
        MessagingProxy {
            backend,
            guard,
            settings,
            clients: Arc::new(Clients::default()),
            next_queue: Arc::new(AtomicUsize::new(0)),
            routes: Default::default(),
        }
    }

    /// Who may do what: the proxy's service is wrapped by it too.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub(crate) fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The clients connected to this proxy.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// Refuses `request` unless its caller may do one of `actions` on
    /// `target`, as the protocol's FORBIDDEN.
    pub(crate) fn authorize<T>(
        &self,
        request: &Request<T>,
        actions: &[Action],
        target: Target,
    ) -> Result<(), Refusal> {
        self.guard
            .check_any(request, actions, target)
            .map_err(|s| Refusal::new(Code::Forbidden, s.message()))
    }

    pub(crate) async fn route(&self, topic: &str) -> Result<names::QueryRouteResponse, Refusal> {
        if topic.is_empty() {
            return Err(Refusal::new(
                Code::IllegalTopic,
                "the topic's name is empty",
            ));
        }
        if let Some(cached) = self.routes.get(topic)
            && cached.0.elapsed() < ROUTE_TTL
        {
            return Ok(cached.1.clone());
        }
        let route = self.backend.route(topic).await.map_err(|s| {
            if s.code() == tonic::Code::NotFound {
                Refusal::new(
                    Code::TopicNotFound,
                    format!("topic {topic:?} does not exist"),
                )
            } else {
                Refusal::from(s)
            }
        })?;
        if self.routes.len() > 10_000 {
            self.routes.retain(|_, (at, _)| at.elapsed() < ROUTE_TTL);
        }
        self.routes
            .insert(topic.to_owned(), (Instant::now(), route.clone()));
        Ok(route)
    }

    async fn query_route_inner(
        &self,
        request: Request<v2::QueryRouteRequest>,
    ) -> Result<Vec<v2::MessageQueue>, Refusal> {
        let topic = request.get_ref().topic.clone().unwrap_or_default();
        self.authorize(
            &request,
            &[Action::Pub, Action::Sub, Action::Get],
            Target::topic(&topic.name),
        )?;
        if request
            .get_ref()
            .endpoints
            .as_ref()
            .is_none_or(|e| e.addresses.is_empty())
        {
            return Err(Refusal::new(
                Code::IllegalAccessPoint,
                "endpoints are empty: give the access point the client was configured with",
            ));
        }
        let route = self.route(&topic.name).await?;
        let backend = Arc::clone(&self.backend);
        let queues = route::message_queues(&route, &topic, |b| backend.endpoint(b));
        if queues.is_empty() {
            return Err(Refusal::new(
                Code::TopicNotFound,
                format!(
                    "topic {:?} has no broker that serves RocketMQ 5 clients",
                    topic.name
                ),
            ));
        }
        Ok(queues)
    }
}

/// What is not served yet answers with the protocol's code, never a hang.
fn not_served(what: &str) -> v2::Status {
    status::failed(
        Code::NotImplemented,
        format!("{what} is not served by this proxy yet"),
    )
}

fn status_of<T>(result: &Result<T, Refusal>) -> v2::Status {
    match result {
        Ok(_) => status::ok(),
        Err(refusal) => refusal.0.clone(),
    }
}

#[tonic::async_trait]
impl MessagingService for MessagingProxy {
    async fn query_route(
        &self,
        request: Request<v2::QueryRouteRequest>,
    ) -> Reply<v2::QueryRouteResponse> {
        let result = self.query_route_inner(request).await;
        Ok(Response::new(v2::QueryRouteResponse {
            status: Some(status_of(&result)),
            message_queues: result.unwrap_or_default(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<v2::HeartbeatRequest>,
    ) -> Reply<v2::HeartbeatResponse> {
        let status = match self.heartbeat_inner(request).await {
            Ok(()) => status::ok(),
            Err(refusal) => refusal.0,
        };
        Ok(Response::new(v2::HeartbeatResponse {
            status: Some(status),
        }))
    }

    async fn send_message(
        &self,
        request: Request<v2::SendMessageRequest>,
    ) -> Reply<v2::SendMessageResponse> {
        let result = self.send_inner(request).await;
        let status = match &result {
            Ok(entries) => entries
                .iter()
                .filter_map(|e| e.status.clone())
                .find(|s| s.code != Code::Ok as i32)
                .unwrap_or_else(status::ok),
            Err(refusal) => refusal.0.clone(),
        };
        Ok(Response::new(v2::SendMessageResponse {
            status: Some(status),
            entries: result.unwrap_or_default(),
        }))
    }

    async fn query_assignment(
        &self,
        request: Request<v2::QueryAssignmentRequest>,
    ) -> Reply<v2::QueryAssignmentResponse> {
        let result = self.query_route_inner(Request::from_parts(
            request.metadata().clone(),
            request.extensions().clone(),
            v2::QueryRouteRequest {
                topic: request.get_ref().topic.clone(),
                endpoints: request.get_ref().endpoints.clone(),
            },
        ));
        let result = result.await.map(|queues| {
            // One assignment per readable broker: a receive takes from any
            // of its queues.
            let mut seen = std::collections::BTreeSet::new();
            queues
                .into_iter()
                .filter(|q| {
                    q.permission == v2::Permission::Read as i32
                        || q.permission == v2::Permission::ReadWrite as i32
                })
                .filter(|q| seen.insert(q.broker.as_ref().map(|b| b.name.clone())))
                .map(|q| v2::Assignment {
                    message_queue: Some(v2::MessageQueue { id: -1, ..q }),
                })
                .collect::<Vec<_>>()
        });
        Ok(Response::new(v2::QueryAssignmentResponse {
            status: Some(status_of(&result)),
            assignments: result.unwrap_or_default(),
        }))
    }

    type ReceiveMessageStream = BoxStream<v2::ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        request: Request<v2::ReceiveMessageRequest>,
    ) -> Reply<Self::ReceiveMessageStream> {
        use v2::receive_message_response::Content;
        // A status, then the messages; or one status saying why none.
        let replies: Vec<Content> = match self.receive_inner(request).await {
            Ok(messages) if messages.is_empty() => vec![Content::Status(status::failed(
                Code::MessageNotFound,
                "no new message",
            ))],
            Ok(messages) => std::iter::once(Content::Status(status::ok()))
                .chain(messages.into_iter().map(Content::Message))
                .collect(),
            Err(refusal) => vec![Content::Status(refusal.0)],
        };
        let replies = replies.into_iter().map(|content| {
            Ok(v2::ReceiveMessageResponse {
                content: Some(content),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn ack_message(
        &self,
        request: Request<v2::AckMessageRequest>,
    ) -> Reply<v2::AckMessageResponse> {
        let result = self.ack_inner(request).await;
        let status = match &result {
            Ok(entries) => {
                let failed = entries
                    .iter()
                    .filter_map(|e| e.status.clone())
                    .filter(|s| s.code != Code::Ok as i32)
                    .collect::<Vec<_>>();
                match failed.len() {
                    0 => status::ok(),
                    n if n == entries.len() => failed[0].clone(),
                    _ => {
                        status::failed(Code::MultipleResults, "some entries were not acknowledged")
                    }
                }
            }
            Err(refusal) => refusal.0.clone(),
        };
        Ok(Response::new(v2::AckMessageResponse {
            status: Some(status),
            entries: result.unwrap_or_default(),
        }))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<v2::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Reply<v2::ForwardMessageToDeadLetterQueueResponse> {
        let result = self.forward_to_dead_letters_inner(request).await;
        Ok(Response::new(v2::ForwardMessageToDeadLetterQueueResponse {
            status: Some(status_of(&result)),
        }))
    }

    type PullMessageStream = BoxStream<v2::PullMessageResponse>;

    async fn pull_message(
        &self,
        request: Request<v2::PullMessageRequest>,
    ) -> Reply<Self::PullMessageStream> {
        use v2::pull_message_response::Content;
        // A status, the messages, then where the next pull starts.
        let replies: Vec<Content> = match self.pull_inner(request).await {
            Ok((messages, next)) => {
                let status = if messages.is_empty() {
                    status::failed(Code::MessageNotFound, "no new message")
                } else {
                    status::ok()
                };
                std::iter::once(Content::Status(status))
                    .chain(messages.into_iter().map(Content::Message))
                    .chain(std::iter::once(Content::NextOffset(next)))
                    .collect()
            }
            Err(refusal) => vec![Content::Status(refusal.0)],
        };
        let replies = replies.into_iter().map(|content| {
            Ok(v2::PullMessageResponse {
                content: Some(content),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn update_offset(
        &self,
        request: Request<v2::UpdateOffsetRequest>,
    ) -> Reply<v2::UpdateOffsetResponse> {
        let result = self.update_offset_inner(request).await;
        Ok(Response::new(v2::UpdateOffsetResponse {
            status: Some(status_of(&result)),
        }))
    }

    async fn get_offset(
        &self,
        request: Request<v2::GetOffsetRequest>,
    ) -> Reply<v2::GetOffsetResponse> {
        let result = self.get_offset_inner(request).await;
        Ok(Response::new(v2::GetOffsetResponse {
            status: Some(status_of(&result)),
            offset: result.unwrap_or(-1),
        }))
    }

    async fn query_offset(
        &self,
        request: Request<v2::QueryOffsetRequest>,
    ) -> Reply<v2::QueryOffsetResponse> {
        let result = self.query_offset_inner(request).await;
        Ok(Response::new(v2::QueryOffsetResponse {
            status: Some(status_of(&result)),
            offset: result.unwrap_or(-1),
        }))
    }

    async fn end_transaction(
        &self,
        request: Request<v2::EndTransactionRequest>,
    ) -> Reply<v2::EndTransactionResponse> {
        let result = self.end_transaction_inner(request).await;
        Ok(Response::new(v2::EndTransactionResponse {
            status: Some(status_of(&result)),
        }))
    }

    type TelemetryStream = BoxStream<v2::TelemetryCommand>;

    async fn telemetry(
        &self,
        request: Request<Streaming<v2::TelemetryCommand>>,
    ) -> Reply<Self::TelemetryStream> {
        let id = client_id(&request);
        let language = header(&request, "x-mq-language");
        let version = header(&request, "x-mq-client-version");
        let addr = request.remote_addr();
        let call = Call {
            extensions: request.extensions().clone(),
        };
        let mut commands = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let proxy = self.clone();
        tokio::spawn(async move {
            // Transactional topics whose checks reach this client already.
            let mut recovering = std::collections::HashSet::new();
            while let Some(Ok(command)) = commands.next().await {
                let Some(v2::telemetry_command::Command::Settings(client)) = command.command else {
                    // Stack traces and verification results: nothing asked.
                    continue;
                };
                let reply = match &id {
                    None => v2::TelemetryCommand {
                        status: Some(status::failed(
                            Code::ClientIdRequired,
                            "the stream has no x-mq-client-id header",
                        )),
                        command: None,
                    },
                    Some(id) => {
                        let info = client_info(id, &client, &language, &version, addr);
                        proxy.clients.seen(info.clone());
                        proxy.report_member(&call, &info).await;
                        if let Some(v2::settings::PubSub::Publishing(publishing)) = &client.pub_sub
                        {
                            let topics: Vec<String> =
                                publishing.topics.iter().map(|t| t.name.clone()).collect();
                            proxy
                                .recover_for(&call, id, &topics, &mut recovering, &tx)
                                .await;
                        }
                        let fifo = proxy.subscribes_fifo(&info).await;
                        v2::TelemetryCommand {
                            status: Some(status::ok()),
                            command: Some(v2::telemetry_command::Command::Settings(
                                proxy.settings.answer(&client, fifo),
                            )),
                        }
                    }
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn notify_client_termination(
        &self,
        request: Request<v2::NotifyClientTerminationRequest>,
    ) -> Reply<v2::NotifyClientTerminationResponse> {
        if let Some(info) = client_id(&request).and_then(|id| self.clients.remove(&id))
            && !info.group.is_empty()
        {
            let call = Call {
                extensions: request.extensions().clone(),
            };
            let left = self
                .backend
                .unregister(
                    &call,
                    broker::UnregisterConsumerRequest {
                        group: info.group.clone(),
                        client_id: info.client_id.clone(),
                    },
                )
                .await;
            if let Err(err) = left {
                tracing::debug!(client_id = %info.client_id, error = %err, "cannot unregister a RocketMQ 5 consumer");
            }
        }
        Ok(Response::new(v2::NotifyClientTerminationResponse {
            status: Some(status::ok()),
        }))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Reply<v2::ChangeInvisibleDurationResponse> {
        let result = self.change_invisible_inner(request).await;
        Ok(Response::new(v2::ChangeInvisibleDurationResponse {
            status: Some(status_of(&result)),
            receipt_handle: result.unwrap_or_default(),
        }))
    }

    async fn recall_message(
        &self,
        _request: Request<v2::RecallMessageRequest>,
    ) -> Reply<v2::RecallMessageResponse> {
        Ok(Response::new(v2::RecallMessageResponse {
            status: Some(not_served("RecallMessage")),
            message_id: String::new(),
        }))
    }
}
