//! Translation between protobuf messages and the domain types, with every
//! input rule checked on the way in. Only the service layer uses this.

use std::collections::BTreeMap;

use mq_common::{FieldError, MessageType, Perm, validate};
use mq_proto::nameserver::v1 as pb;

use crate::model::{
    BrokerData, BrokerInstance, DataVersion, LiveInstance, QueueConfig, RegisterOutcome,
    Registration, TopicRoute,
};

pub fn registration(req: pb::RegisterBrokerRequest) -> Result<Registration, FieldError> {
    let instance = instance(
        req.cluster_name,
        req.broker_name,
        req.broker_id,
        req.broker_addr,
    )?;
    let proxy_addr = (!req.proxy_addr.is_empty()).then_some(req.proxy_addr);
    if let Some(addr) = &proxy_addr {
        validate::host_port("proxy_addr", addr)?;
    }
    let instance = BrokerInstance {
        proxy_addr,
        ..instance
    };
    let version = req
        .data_version
        .ok_or_else(|| FieldError::new("data_version", "is required"))?;
    let mut topics = BTreeMap::new();
    for (i, t) in req.topics.into_iter().enumerate() {
        let field = |name: &str| format!("topics[{i}].{name}");
        validate::topic(&field("topic"), &t.topic)?;
        validate::queue_count(&field("read_queue_count"), t.read_queue_count)?;
        validate::queue_count(&field("write_queue_count"), t.write_queue_count)?;
        let perm = Perm::from_bits(&field("perm"), t.perm)?;
        let config = QueueConfig {
            read_queue_count: t.read_queue_count,
            write_queue_count: t.write_queue_count,
            perm,
            message_type: MessageType::parse(&field("message_type"), &t.message_type)?,
        };
        if topics.insert(t.topic.clone(), config).is_some() {
            return Err(FieldError::new(
                field("topic"),
                format!("topic {:?} is listed twice", t.topic),
            ));
        }
    }
    Ok(Registration {
        instance,
        topics,
        data_version: data_version(version),
        master_epoch: req.master_epoch,
    })
}

pub fn unregistration(req: pb::UnregisterBrokerRequest) -> Result<BrokerInstance, FieldError> {
    instance(
        req.cluster_name,
        req.broker_name,
        req.broker_id,
        req.broker_addr,
    )
}

fn instance(
    cluster: String,
    broker_name: String,
    broker_id: u64,
    addr: String,
) -> Result<BrokerInstance, FieldError> {
    validate::node_name("cluster_name", &cluster)?;
    validate::node_name("broker_name", &broker_name)?;
    validate::host_port("broker_addr", &addr)?;
    Ok(BrokerInstance {
        cluster,
        broker_name,
        broker_id,
        addr,
        proxy_addr: None,
    })
}

/// A topic named in a query or deletion.
pub fn topic(topic: &str) -> Result<&str, FieldError> {
    validate::topic("topic", topic)?;
    Ok(topic)
}

fn data_version(v: pb::DataVersion) -> DataVersion {
    DataVersion {
        timestamp_ms: v.timestamp_ms,
        counter: v.counter,
    }
}

fn pb_data_version(v: DataVersion) -> pb::DataVersion {
    pb::DataVersion {
        timestamp_ms: v.timestamp_ms,
        counter: v.counter,
    }
}

pub fn register_response(outcome: RegisterOutcome) -> pb::RegisterBrokerResponse {
    pb::RegisterBrokerResponse {
        heartbeat_only: outcome.heartbeat_only,
        master_addr: outcome.master_addr.unwrap_or_default(),
        data_version: Some(pb_data_version(outcome.data_version)),
    }
}

pub fn route_response(route: TopicRoute) -> pb::QueryRouteResponse {
    pb::QueryRouteResponse {
        topic: route.topic,
        queues: route
            .queues
            .into_iter()
            .map(|(broker_name, q)| pb::QueueData {
                broker_name,
                read_queue_count: q.read_queue_count,
                write_queue_count: q.write_queue_count,
                perm: q.perm.bits(),
                message_type: q.message_type.as_str().to_owned(),
            })
            .collect(),
        brokers: route.brokers.into_iter().map(broker_data).collect(),
    }
}

fn broker_data(b: BrokerData) -> pb::BrokerData {
    pb::BrokerData {
        cluster_name: b.cluster,
        broker_name: b.broker_name,
        addresses: b.addrs.into_iter().collect(),
        proxy_addresses: b.proxy_addrs.into_iter().collect(),
    }
}

/// Groups instances (sorted by cluster, broker name, id) into clusters.
pub fn cluster_info(instances: Vec<LiveInstance>) -> pb::GetClusterInfoResponse {
    let mut clusters: Vec<pb::ClusterInfo> = Vec::new();
    for live in instances {
        let i = live.instance;
        if clusters.last().is_none_or(|c| c.cluster_name != i.cluster) {
            clusters.push(pb::ClusterInfo {
                cluster_name: i.cluster.clone(),
                brokers: Vec::new(),
            });
        }
        let brokers = &mut clusters.last_mut().expect("pushed above").brokers;
        if brokers
            .last()
            .is_none_or(|b| b.broker_name != i.broker_name)
        {
            brokers.push(pb::BrokerInfo {
                broker_name: i.broker_name.clone(),
                instances: Vec::new(),
            });
        }
        brokers
            .last_mut()
            .expect("pushed above")
            .instances
            .push(pb::BrokerInstance {
                broker_id: i.broker_id,
                address: i.addr,
                last_heartbeat_ms: live.last_heartbeat_ms,
                data_version: Some(pb_data_version(live.data_version)),
            });
    }
    pb::GetClusterInfoResponse { clusters }
}
