//! Publishing the subscription events of one connection: `active: true`
//! when it subscribes, `active: false` when its stream ends.

use crate::presence::ActiveSubscription;
use crate::protocol::Revision;
use crate::{Hub, Update};

/// The subscriptions of one connection, announced; dropping it (the stream
/// ended, whatever the reason) announces their end.
pub(crate) struct Announced {
    hub: Hub,
    subscriptions: Vec<ActiveSubscription>,
}

impl Announced {
    /// Publishes `active: true` for each of `subscriptions`.
    pub(crate) async fn start(hub: &Hub, subscriptions: Vec<ActiveSubscription>) -> Announced {
        if let Some(membership) = &hub.shared.membership {
            membership.enter(hub_path(hub), &subscriptions).await;
        }
        publish(hub, &subscriptions, true).await;
        Announced {
            hub: hub.clone(),
            subscriptions,
        }
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hub = self.hub.clone();
        let subscriptions = std::mem::take(&mut self.subscriptions);
        let announcements = self.hub.shared.announcements.clone();
        announcements.spawn_on(
            async move {
                if let Some(membership) = &hub.shared.membership {
                    membership.leave(hub_path(&hub), &subscriptions).await;
                }
                publish(&hub, &subscriptions, false).await
            },
            &runtime,
        );
    }
}

fn hub_path(hub: &Hub) -> &str {
    hub.shared.config.hub_url.as_url().path()
}

/// One private update per subscription, on its reserved topic, with the
/// reserved event type `mercure` for draft-08 documents (draft-08
/// §Subscription Events). A failure is logged: the subscription itself
/// goes on (or has ended) either way. Returns whether every update was
/// published.
pub(super) async fn publish(hub: &Hub, subscriptions: &[ActiveSubscription], active: bool) -> bool {
    let hub_path = hub_path(hub).to_owned();
    let mut published = true;
    for subscription in subscriptions {
        let topic = subscription.topic(&hub_path);
        let data = subscription.document(&hub_path, active).to_string();
        let event_type = match subscription.revision() {
            Revision::Draft08 => Some(crate::protocol::HUB_EVENT_TYPE),
            Revision::Draft07 => None,
        };
        let update = match Update::hub_event(topic, &data, event_type) {
            Ok(update) => update,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode a subscription event");
                continue;
            }
        };
        if let Err(e) = hub.publish_update(update).await {
            tracing::warn!(error = %e, active, "could not publish a subscription event");
            published = false;
        }
    }
    published
}
