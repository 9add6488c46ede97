//! Wire types and gRPC stubs of every service, generated from the `.proto`
//! files in this crate's `mq/` folder. Nothing but generated code lives here:
//! services translate these types to their domain types at the edge.
//! Depends on prost and tonic, nothing of ours.

/// Encoded `FileDescriptorSet` of every proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mq_descriptor.bin"));

/// `mq.nameserver.v1`: the route registry.
pub mod nameserver {
    /// Version 1 of the nameserver protocol.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("mq.nameserver.v1");
    }
}

/// `mq.broker.v1`: sending to and managing a broker.
pub mod broker {
    /// Version 1 of the broker protocol.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("mq.broker.v1");
    }
}

/// `mq.controller.v1`: Raft between controllers.
pub mod controller {
    /// Version 1 of the controller protocols.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("mq.controller.v1");
    }
}

/// `mq.replication.v1`: replicas following their master's CommitLog.
pub mod replication {
    /// Version 1 of the replication protocol.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("mq.replication.v1");
    }
}

/// `mq.auth.v1`: users and access policies.
pub mod auth {
    /// Version 1 of the auth protocol.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("mq.auth.v1");
    }
}

/// `apache.rocketmq.v2`: Apache RocketMQ 5's protocol, spoken by its
/// official clients in every language (served by `mq-proxy`).
pub mod apache {
    /// The `apache.rocketmq` packages.
    pub mod rocketmq {
        /// Version 2, RocketMQ 5's gRPC protocol.
        pub mod v2 {
            #![allow(missing_docs, clippy::all)]
            tonic::include_proto!("apache.rocketmq.v2");
        }
    }
}
