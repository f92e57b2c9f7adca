"""Workload identity and bearer-token authentication for the services.

- :mod:`.credentials`: the process's Azure credential (workload identity in AKS, developer chain
  elsewhere) and cached bearer tokens from it, for outbound calls;
- :mod:`.clients`: keyless Service Bus, Redis, MongoDB and Key Vault clients;
- :mod:`.inbound`: the FastAPI dependency that validates incoming bearer tokens;
- :mod:`.policy`: what each route admits (app roles, customers);
- :mod:`.devissuer`: a local token issuer so everything above runs with auth on, without Azure.
"""

from dronecommon.auth.clients import (
    REDIS_SCOPE,
    AzureIdentityOIDCCallback,
    EntraIdCredentialProvider,
    KeylessRedis,
    create_mongo_client,
    create_redis_client,
    create_secret_client,
    create_servicebus_client,
    mongo_client_kwargs,
)
from dronecommon.auth.credentials import (
    BearerTokenProvider,
    CredentialConfigurationError,
    TokenProvider,
    create_credential,
    create_sync_credential,
    credential_for,
    credential_needed,
    outbound_token_provider,
    workload_identity_configured,
)
from dronecommon.auth.devissuer import (
    DEFAULT_DEV_ISSUER,
    PUBLIC_AUDIENCE,
    SERVICE_AUDIENCES,
    DevIssuer,
    DevTokenProvider,
)
from dronecommon.auth.inbound import (
    ANONYMOUS,
    Authenticator,
    Caller,
    CurrentCaller,
    auth_dependency,
    current_caller,
)
from dronecommon.auth.policy import requires

__all__ = [
    "ANONYMOUS",
    "DEFAULT_DEV_ISSUER",
    "PUBLIC_AUDIENCE",
    "REDIS_SCOPE",
    "SERVICE_AUDIENCES",
    "Authenticator",
    "AzureIdentityOIDCCallback",
    "BearerTokenProvider",
    "Caller",
    "CredentialConfigurationError",
    "CurrentCaller",
    "DevIssuer",
    "DevTokenProvider",
    "EntraIdCredentialProvider",
    "KeylessRedis",
    "TokenProvider",
    "auth_dependency",
    "create_credential",
    "create_mongo_client",
    "create_redis_client",
    "create_secret_client",
    "create_servicebus_client",
    "create_sync_credential",
    "credential_for",
    "credential_needed",
    "current_caller",
    "mongo_client_kwargs",
    "outbound_token_provider",
    "requires",
    "workload_identity_configured",
]
