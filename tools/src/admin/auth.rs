//! `mqadmin user ...` and `mqadmin acl ...`: the cluster's users and
//! access policies, kept by the nameservers. A change goes to every
//! nameserver; one that is down gets it later from the other servers'
//! copies (docs/architecture.md, "Security"). Needs a super user.

use std::future::Future;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mq_nameserver_client::{NameServerClientError, Stubs};
use mq_proto::auth::v1 as pb;
use serde_json::json;

use super::client::Admin;
use super::output::{Table, emit};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a user.
    Create(UserArgs),
    /// Changes a user's secret key or type.
    Update(UserArgs),
    /// Deletes a user and its policies.
    Delete {
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// Lists users (never their secrets).
    List {
        /// Only users whose name starts with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user's name (its access key).
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Its secret key.
    #[arg(long, value_name = "SECRET", conflicts_with = "secret_file")]
    secret: Option<String>,
    /// A file holding its secret key (keeps it off the command line).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<std::path::PathBuf>,
    /// super (may do everything) or normal (what its policies allow).
    #[arg(long = "type", value_name = "TYPE")]
    user_type: Option<mq_auth::model::UserType>,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Adds a user's policies on resources it has none on yet.
    Create(AclArgs),
    /// Replaces a user's policies on these resources (adds the others).
    Update(AclArgs),
    /// Removes a user's policies on the resources given, or all of them.
    Delete {
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Cluster, Topic:NAME, Group:NAME (NAME may end in '*'), or *; repeatable.
        #[arg(long = "resource", value_name = "RESOURCE")]
        resources: Vec<String>,
    },
    /// Lists policies.
    List {
        /// Only this user's.
        #[arg(long, value_name = "NAME", default_value = "")]
        user: String,
    },
}

#[derive(Debug, Args)]
pub struct AclArgs {
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Cluster, Topic:NAME, Group:NAME (NAME may end in '*'), or *; repeatable.
    #[arg(long = "resource", value_name = "RESOURCE", required = true)]
    resources: Vec<String>,
    /// Pub, Sub, Create, Update, Delete, Get, List, Admin or All, comma-separated.
    #[arg(long, value_name = "LIST")]
    actions: String,
    /// Only from these addresses or ranges (10.0.0.0/8), comma-separated.
    #[arg(long, value_name = "LIST", default_value = "")]
    source_ips: String,
    /// Allow or Deny.
    #[arg(long, value_name = "DECISION", default_value = "Allow")]
    decision: mq_auth::model::Decision,
}

pub async fn user(admin: &Admin, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => {
            let secret = secret(&args)?.context("--secret or --secret-file is required")?;
            let request = pb::CreateUserRequest {
                username: args.user.clone(),
                secret,
                user_type: wire_type(args.user_type.unwrap_or(mq_auth::model::UserType::Normal)),
            };
            let done = format!("created user {}", args.user);
            change(admin, &done, move |mut s| {
                let request = request.clone();
                async move { s.auth.create_user(request).await }
            })
            .await
        }
        UserCommand::Update(args) => {
            let secret = secret(&args)?;
            if secret.is_none() && args.user_type.is_none() {
                bail!("nothing to change: give --secret, --secret-file or --type");
            }
            let request = pb::UpdateUserRequest {
                username: args.user.clone(),
                secret: secret.unwrap_or_default(),
                user_type: args.user_type.map_or(0, wire_type),
            };
            let done = format!("updated user {}", args.user);
            change(admin, &done, move |mut s| {
                let request = request.clone();
                async move { s.auth.update_user(request).await }
            })
            .await
        }
        UserCommand::Delete { user } => {
            let request = pb::DeleteUserRequest {
                username: user.clone(),
            };
            change(admin, &format!("deleted user {user}"), move |mut s| {
                let request = request.clone();
                async move { s.auth.delete_user(request).await }
            })
            .await
        }
        UserCommand::List { prefix } => {
            let listed = admin
                .namesrv
                .first_answer(|mut s| {
                    let prefix = prefix.clone();
                    async move { s.auth.list_users(pb::ListUsersRequest { prefix }).await }
                })
                .await?;
            let mut table = Table::new(&[("USER", "user"), ("TYPE", "type")]);
            for user in &listed.users {
                table.push(json!({"user": user.username, "type": type_name(user.user_type)}));
            }
            let footer = [format!("version {}", listed.version)];
            let json = json!({"users": table.rows(), "version": listed.version});
            emit(admin.json, &table, &footer, json);
            Ok(())
        }
    }
}

pub async fn acl(admin: &Admin, command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Create(args) | AclCommand::Update(args) if args.actions.trim().is_empty() => {
            bail!("--actions must name at least one action (e.g. Pub,Sub)")
        }
        AclCommand::Create(args) => {
            let (request, done) = acl_request(&args, "created")?;
            change(admin, &done, move |mut s| {
                let request = request.clone();
                async move { s.auth.create_acl(request).await }
            })
            .await
        }
        AclCommand::Update(args) => {
            let (request, done) = acl_request(&args, "updated")?;
            change(admin, &done, move |mut s| {
                let request = request.clone();
                async move { s.auth.update_acl(request).await }
            })
            .await
        }
        AclCommand::Delete { user, resources } => {
            for resource in &resources {
                resource
                    .parse::<mq_auth::model::Resource>()
                    .map_err(|e| anyhow::anyhow!("--resource: {e}"))?;
            }
            let done = format!("deleted policies of {user}");
            let request = pb::DeleteAclRequest {
                username: user,
                resources,
            };
            change(admin, &done, move |mut s| {
                let request = request.clone();
                async move { s.auth.delete_acl(request).await }
            })
            .await
        }
        AclCommand::List { user } => {
            let listed = admin
                .namesrv
                .first_answer(|mut s| {
                    let username = user.clone();
                    async move { s.auth.list_acls(pb::ListAclsRequest { username }).await }
                })
                .await?;
            let mut table = Table::new(&[
                ("USER", "user"),
                ("RESOURCE", "resource"),
                ("ACTIONS", "actions"),
                ("SOURCE IPS", "source_ips"),
                ("DECISION", "decision"),
            ]);
            for acl in &listed.acls {
                for policy in &acl.policies {
                    table.push(json!({
                        "user": acl.username,
                        "resource": policy.resource,
                        "actions": policy.actions.join(","),
                        "source_ips": policy.source_ips.join(","),
                        "decision": if policy.decision == pb::Decision::Deny as i32 { "Deny" } else { "Allow" },
                    }));
                }
            }
            let footer = [format!("version {}", listed.version)];
            let json = json!({"policies": table.rows(), "version": listed.version});
            emit(admin.json, &table, &footer, json);
            Ok(())
        }
    }
}

/// Checks a policy on this side (same rules as the nameservers) so that a
/// typo is named before anything is sent.
fn acl_request(args: &AclArgs, verb: &str) -> anyhow::Result<(pb::AclRequest, String)> {
    let actions = mq_auth::model::Action::parse_list(&args.actions)
        .map_err(|e| anyhow::anyhow!("--actions: {e}"))?;
    let source_ips = mq_auth::model::parse_source_ips(&args.source_ips)
        .map_err(|e| anyhow::anyhow!("--source-ips: {e}"))?;
    let mut policies = Vec::new();
    for resource in &args.resources {
        let parsed: mq_auth::model::Resource = resource
            .parse()
            .map_err(|e| anyhow::anyhow!("--resource: {e}"))?;
        policies.push(pb::Policy {
            resource: parsed.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            source_ips: source_ips.iter().map(|n| n.to_string()).collect(),
            decision: match args.decision {
                mq_auth::model::Decision::Allow => pb::Decision::Allow as i32,
                mq_auth::model::Decision::Deny => pb::Decision::Deny as i32,
            },
        });
    }
    let done = format!(
        "{verb} policies of {} on {}",
        args.user,
        args.resources.join(", ")
    );
    Ok((
        pb::AclRequest {
            username: args.user.clone(),
            policies,
        },
        done,
    ))
}

/// Sends a change to every nameserver. It is done when one took it; the
/// refusal is the error when none did.
async fn change<F, Fut>(admin: &Admin, done: &str, call: F) -> anyhow::Result<()>
where
    F: Fn(Stubs) -> Fut,
    Fut: Future<Output = Result<tonic::Response<pb::ChangeResponse>, tonic::Status>>
        + Send
        + 'static,
{
    let results = admin.namesrv.every_answer(call).await;
    let mut version = None;
    let mut failures = Vec::new();
    for (addr, result) in results {
        match result {
            Ok(answer) => version = version.max(Some(answer.version)),
            Err(err) => failures.push((addr, err)),
        }
    }
    let Some(version) = version else {
        // Every nameserver refused or was unreachable: the first refusal
        // says why (they apply the same rules).
        let refusal = failures
            .iter()
            .find(|(_, e)| matches!(e, NameServerClientError::Refused { .. }))
            .or(failures.first());
        match refusal {
            Some((_, err)) => bail!("{err}"),
            None => bail!("no nameserver answered"),
        }
    };
    for (addr, err) in &failures {
        eprintln!(
            "mqadmin: warning: nameserver {addr} did not take the change ({err}); it gets it from the other servers' copies within seconds"
        );
    }
    if admin.json {
        println!("{}", json!({"result": done, "version": version}));
    } else {
        println!("{done} (version {version})");
    }
    Ok(())
}

fn secret(args: &UserArgs) -> anyhow::Result<Option<String>> {
    match (&args.secret, &args.secret_file) {
        (Some(secret), _) => Ok(Some(secret.clone())),
        (None, Some(path)) => Ok(Some(
            mq_auth::Credentials::read_secret_file(path).map_err(anyhow::Error::new)?,
        )),
        (None, None) => Ok(None),
    }
}

fn wire_type(user_type: mq_auth::model::UserType) -> i32 {
    match user_type {
        mq_auth::model::UserType::Super => pb::UserType::Super as i32,
        mq_auth::model::UserType::Normal => pb::UserType::Normal as i32,
    }
}

fn type_name(wire: i32) -> &'static str {
    match pb::UserType::try_from(wire) {
        Ok(pb::UserType::Super) => "super",
        Ok(pb::UserType::Normal) => "normal",
        _ => "unknown",
    }
}
