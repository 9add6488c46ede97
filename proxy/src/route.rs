//! Routes as RocketMQ 5 clients expect them: one `MessageQueue` per queue
//! id of every broker that serves the topic, each with the endpoint where
//! the client reaches it and the message type the topic accepts.

use std::net::IpAddr;

use mq_common::{MessageType, Perm};
use mq_proto::apache::rocketmq::v2;
use mq_proto::nameserver::v1 as names;

/// The protocol's message type of a topic type.
pub fn v2_message_type(message_type: MessageType) -> v2::MessageType {
    match message_type {
        MessageType::Normal => v2::MessageType::Normal,
        MessageType::Fifo => v2::MessageType::Fifo,
        MessageType::Delay => v2::MessageType::Delay,
        MessageType::Transaction => v2::MessageType::Transaction,
    }
}

/// `host:port` as the protocol's endpoints.
pub fn endpoints(addr: &str) -> v2::Endpoints {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let scheme = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => v2::AddressScheme::IPv4,
        Ok(IpAddr::V6(_)) => v2::AddressScheme::IPv6,
        Err(_) => v2::AddressScheme::DomainName,
    };
    v2::Endpoints {
        scheme: scheme as i32,
        addresses: vec![v2::Address {
            host: host.to_owned(),
            port: port.parse().unwrap_or(0),
        }],
    }
}

/// The topic's type as its route says (the master's configuration).
pub fn message_type(route: &names::QueryRouteResponse) -> MessageType {
    route
        .queues
        .first()
        .and_then(|q| MessageType::parse("message_type", &q.message_type).ok())
        .unwrap_or_default()
}

/// One `MessageQueue` per queue of every broker with a reachable
/// endpoint; `endpoint` says where a broker is reached.
pub fn message_queues(
    route: &names::QueryRouteResponse,
    resource: &v2::Resource,
    endpoint: impl Fn(&names::BrokerData) -> Option<String>,
) -> Vec<v2::MessageQueue> {
    let mut queues = Vec::new();
    for data in &route.queues {
        let Some(broker) = route
            .brokers
            .iter()
            .find(|b| b.broker_name == data.broker_name)
        else {
            continue;
        };
        let Some(addr) = endpoint(broker) else {
            continue;
        };
        let accepts = MessageType::parse("message_type", &data.message_type).unwrap_or_default();
        let perm = Perm::from_bits("perm", data.perm).unwrap_or(Perm::READ_WRITE);
        let count = data.read_queue_count.max(data.write_queue_count);
        for id in 0..count {
            let readable = perm.readable() && id < data.read_queue_count;
            let writable = perm.writable() && id < data.write_queue_count;
            let permission = match (readable, writable) {
                (true, true) => v2::Permission::ReadWrite,
                (true, false) => v2::Permission::Read,
                (false, true) => v2::Permission::Write,
                (false, false) => v2::Permission::None,
            };
            queues.push(v2::MessageQueue {
                topic: Some(resource.clone()),
                id: id as i32,
                permission: permission as i32,
                broker: Some(v2::Broker {
                    name: data.broker_name.clone(),
                    id: 0,
                    endpoints: Some(endpoints(&addr)),
                }),
                accept_message_types: vec![v2_message_type(accepts) as i32],
            });
        }
    }
    queues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(read: u32, write: u32, perm: u32) -> names::QueryRouteResponse {
        names::QueryRouteResponse {
            topic: "t".into(),
            queues: vec![names::QueueData {
                broker_name: "broker-a".into(),
                read_queue_count: read,
                write_queue_count: write,
                perm,
                message_type: "FIFO".into(),
            }],
            brokers: vec![names::BrokerData {
                cluster_name: "c".into(),
                broker_name: "broker-a".into(),
                addresses: [(0, "10.0.0.1:10911".to_owned())].into(),
                proxy_addresses: [(0, "10.0.0.1:8081".to_owned())].into(),
            }],
        }
    }

    fn topic() -> v2::Resource {
        v2::Resource {
            resource_namespace: String::new(),
            name: "t".into(),
        }
    }

    #[test]
    fn every_queue_is_listed_with_its_permission_type_and_endpoint() {
        let queues = message_queues(&route(2, 3, 6), &topic(), |b| {
            b.proxy_addresses.get(&0).cloned()
        });
        let perms: Vec<i32> = queues.iter().map(|q| q.permission).collect();
        assert_eq!(
            perms,
            [
                v2::Permission::ReadWrite as i32,
                v2::Permission::ReadWrite as i32,
                v2::Permission::Write as i32
            ]
        );
        let broker = queues[2].broker.as_ref().unwrap();
        let address = &broker.endpoints.as_ref().unwrap().addresses[0];
        assert_eq!((address.host.as_str(), address.port), ("10.0.0.1", 8081));
        assert_eq!(
            queues[0].accept_message_types,
            [v2::MessageType::Fifo as i32]
        );
    }

    #[test]
    fn brokers_without_an_endpoint_and_disabled_queues_are_told_apart() {
        assert!(message_queues(&route(2, 2, 6), &topic(), |_| None).is_empty());
        let queues = message_queues(&route(1, 1, 0), &topic(), |_| Some("h:1".into()));
        assert_eq!(queues[0].permission, v2::Permission::None as i32);
        let e = endpoints("mq-broker-a:8081");
        assert_eq!(e.scheme, v2::AddressScheme::DomainName as i32);
        assert_eq!(endpoints("[::1]:8081").addresses[0].host, "::1");
    }
}
