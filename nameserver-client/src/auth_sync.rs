//! Keeping a server's copy of the users and policies in step with the
//! nameservers' (feature `auth-sync`): every `sync_interval`, each
//! nameserver is told this copy's version and digest; a newer copy comes
//! back and is adopted, and a nameserver holding an older one (restarted
//! without its file, or down during a change) is sent this one. So a
//! change made on any nameserver reaches every server within about two
//! intervals, and a nameserver that lost its copy gets it back.

use std::sync::Arc;

use mq_auth::snapshot::AuthSnapshot;
use mq_auth::store::AuthStore;
use mq_proto::auth::v1 as pb;
use tokio::sync::watch;

use crate::client::NameServerClient;

/// Syncs `store` with the nameservers of `client` until `stop` is set.
pub async fn keep_in_sync(
    client: NameServerClient,
    store: Arc<AuthStore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(store.settings().sync_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => sync_once(&client, &store).await,
            // (The watch's guard must not live across the sync's awaits.)
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
    }
}

/// One round: ask every nameserver; adopt what is newer; send ours to
/// those that hold something older.
pub async fn sync_once(client: &NameServerClient, store: &AuthStore) {
    let behind = exchange(client, store, false).await;
    if behind {
        exchange(client, store, true).await;
    }
}

/// Whether some nameserver asked for our copy.
async fn exchange(client: &NameServerClient, store: &AuthStore, send_ours: bool) -> bool {
    let ours = store.snapshot();
    let request = pb::SyncAuthRequest {
        version: ours.version,
        digest: ours.digest(),
        snapshot: if send_ours {
            serde_json::to_vec(&*ours).unwrap_or_default().into()
        } else {
            Default::default()
        },
    };
    let results = client
        .every_answer(move |mut stubs| {
            let request = request.clone();
            async move { stubs.auth.sync_auth(request).await }
        })
        .await;
    let mut behind = false;
    for (addr, result) in results {
        let answer = match result {
            Ok(answer) => answer,
            Err(err) => {
                tracing::debug!(nameserver = %addr, error = %err, "cannot sync the users and policies");
                continue;
            }
        };
        behind |= answer.send_yours;
        if answer.snapshot.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuthSnapshot>(&answer.snapshot) {
            Ok(theirs) => match store.offer(theirs) {
                Ok(true) => tracing::info!(
                    nameserver = %addr,
                    version = store.snapshot().version,
                    "adopted a newer copy of the users and policies"
                ),
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot keep the newer users and policies")
                }
            },
            Err(err) => {
                tracing::warn!(nameserver = %addr, error = %err, "unreadable users and policies from a nameserver")
            }
        }
    }
    behind
}
