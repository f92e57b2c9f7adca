"""The roles of the system: one vocabulary for the routes that check them, the identities that
hold them (Entra app role assignments; the development issuer's ``dev_roles``) and the docs.

User role (in customer tokens for the public API):

- :data:`OPERATOR`: reads and changes every customer's deliveries.

App roles (in service tokens, each defined on the API that checks it):

- :data:`PACKAGES_WRITE` (package): the workflow stores packages;
- :data:`DRONES_ASSIGN` (drone scheduler): the workflow assigns, re-plans and releases drones;
- :data:`DRONES_FLY` (drone scheduler): the simulator reads drones and releases them at base;
- :data:`DELIVERIES_WRITE` (delivery): the workflow creates, reschedules and cancels deliveries
  and registers notify-me requests;
- :data:`DELIVERIES_READ` (delivery): the notifier reads a delivery's notify-me requests (the
  owner routes' reads, nothing else);
- :data:`DELIVERIES_CONFIRM` (delivery): the simulator confirms deliveries;
- :data:`FLEET_CONTROL` (simulator): operations read and control the fleet;
- :data:`NOTIFICATIONS_READ` (notifier): what was sent for a delivery, the local SMS sink;
- :data:`WEBHOOKS_SECRETS` (notifier): an account's webhook signing secret.
"""

from __future__ import annotations

OPERATOR = "Operator"
PACKAGES_WRITE = "Packages.Write"
DRONES_ASSIGN = "Drones.Assign"
DRONES_FLY = "Drones.Fly"
DELIVERIES_WRITE = "Deliveries.Write"
DELIVERIES_READ = "Deliveries.Read"
DELIVERIES_CONFIRM = "Deliveries.Confirm"
FLEET_CONTROL = "Fleet.Control"
NOTIFICATIONS_READ = "Notifications.Read"
WEBHOOKS_SECRETS = "Webhooks.Secrets"

APP_ROLES = (
    PACKAGES_WRITE,
    DRONES_ASSIGN,
    DRONES_FLY,
    DELIVERIES_WRITE,
    DELIVERIES_READ,
    DELIVERIES_CONFIRM,
    FLEET_CONTROL,
    NOTIFICATIONS_READ,
    WEBHOOKS_SECRETS,
)
