//! The gRPC edge of the nameserver: one method per RPC, each validating its
//! request, calling the route table, and translating the answer.

use crate::metrics::NameServerMetrics;
use std::sync::Arc;

use mq_auth::guard::Guard;
use mq_auth::model::{Action, Target};
use mq_proto::nameserver::v1 as pb;
use mq_proto::nameserver::v1::name_server_server::NameServer;
use tonic::{Request, Response, Status};

use crate::error::NameServerError;
use crate::route_table::RouteTable;
use crate::wire;
use mq_common::clock::unix_millis;

/// Serves `mq.nameserver.v1.NameServer` over a shared route table.
#[derive(Debug, Clone)]
pub struct NameServerService {
    table: Arc<RouteTable>,
    metrics: NameServerMetrics,
    guard: Guard,
}

impl NameServerService {
    pub fn new(table: Arc<RouteTable>, metrics: NameServerMetrics, guard: Guard) -> Self {
        NameServerService {
            table,
            metrics,
            guard,
        }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn invalid(err: mq_common::FieldError) -> Status {
    NameServerError::from(err).into()
}

fn refused(err: crate::route_table::RouteError) -> Status {
    NameServerError::from(err).into()
}

#[tonic::async_trait]
impl NameServer for NameServerService {
    async fn register_broker(
        &self,
        request: Request<pb::RegisterBrokerRequest>,
    ) -> RpcResult<pb::RegisterBrokerResponse> {
        // Only the cluster's own members (or its administrators) may say
        // where a broker is: a forged registration would hand clients an
        // impostor's address.
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let registration = wire::registration(request.into_inner()).map_err(invalid)?;
        let instance = registration.instance.clone();
        let topics = registration.topics.len();
        let outcome = self
            .table
            .register(registration, unix_millis())
            .map_err(refused)?;
        self.metrics.registered(outcome.heartbeat_only);
        if outcome.heartbeat_only {
            tracing::debug!(broker = %instance.broker_name, addr = %instance.addr, "heartbeat");
        } else {
            tracing::info!(
                cluster = %instance.cluster,
                broker = %instance.broker_name,
                broker_id = instance.broker_id,
                addr = %instance.addr,
                topics,
                "broker registered"
            );
        }
        Ok(Response::new(wire::register_response(outcome)))
    }

    async fn unregister_broker(
        &self,
        request: Request<pb::UnregisterBrokerRequest>,
    ) -> RpcResult<pb::UnregisterBrokerResponse> {
        self.guard.check(&request, Action::Admin, Target::Cluster)?;
        let instance = wire::unregistration(request.into_inner()).map_err(invalid)?;
        let removed = self.table.unregister(&instance);
        if removed {
            self.metrics.unregistered();
            tracing::info!(broker = %instance.broker_name, broker_id = instance.broker_id, addr = %instance.addr, "broker unregistered");
        }
        Ok(Response::new(pb::UnregisterBrokerResponse { removed }))
    }

    async fn query_route(
        &self,
        request: Request<pb::QueryRouteRequest>,
    ) -> RpcResult<pb::QueryRouteResponse> {
        let topic = wire::topic(&request.get_ref().topic).map_err(invalid)?;
        // The auto-creation route is every producer's to borrow (a send to
        // a new topic is still checked by the broker).
        if topic != mq_common::AUTO_CREATE_TOPIC {
            self.guard.check_any(
                &request,
                &[Action::Pub, Action::Sub, Action::Get],
                Target::topic(topic),
            )?;
        }
        let route = self.table.query_route(topic);
        self.metrics.route_query(route.is_ok());
        let route = route.map_err(refused)?;
        Ok(Response::new(wire::route_response(route)))
    }

    async fn get_cluster_info(
        &self,
        request: Request<pb::GetClusterInfoRequest>,
    ) -> RpcResult<pb::GetClusterInfoResponse> {
        self.guard.check(&request, Action::Get, Target::Cluster)?;
        Ok(Response::new(wire::cluster_info(
            self.table.live_instances(),
        )))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        self.guard.check(&request, Action::List, Target::Cluster)?;
        Ok(Response::new(pb::ListTopicsResponse {
            topics: self.table.list_topics(),
        }))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> RpcResult<pb::DeleteTopicResponse> {
        let topic = wire::topic(&request.get_ref().topic).map_err(invalid)?;
        self.guard
            .check(&request, Action::Delete, Target::topic(topic))?;
        self.table.delete_topic(topic).map_err(refused)?;
        tracing::info!(topic, "topic deleted from routes");
        Ok(Response::new(pb::DeleteTopicResponse {}))
    }
}
