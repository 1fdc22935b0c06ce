"""How every Kafka client of the project connects (FastStream's broker, aiokafka consumers and admin
clients): one decision from settings, so no client can end up with weaker TLS or SASL than another.

`kafka_security` decides; `client_options` is the same decision as aiokafka keyword arguments, made
by FastStream's own translation (`parse_security`), which is also what the broker applies.
"""
from ssl import SSLContext
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from .settings import TLS_PROTOCOLS, KafkaSettings

_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def kafka_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's security object for the configured protocol (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    context = _ssl_context(settings) if protocol in TLS_PROTOCOLS else None
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        # use_ssl=False is explicit for SASL_PLAINTEXT: FastStream would otherwise infer it from the context.
        return _SASL[settings.kafka_sasl_mechanism](settings.kafka_sasl_username,
                                                     settings.kafka_sasl_password.get_secret_value(),
                                                     ssl_context=context, use_ssl=context is not None)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **parse_security(kafka_security(settings))}


def _ssl_context(settings: KafkaSettings) -> SSLContext:
    # aiokafka's helper is ssl.create_default_context: certificate and host name always verified.
    # Without KAFKA_SSL_CA_FILE the system CAs are trusted (managed clusters with public certificates).
    return create_ssl_context(cafile=settings.kafka_ssl_ca_file, certfile=settings.kafka_ssl_cert_file,
                              keyfile=settings.kafka_ssl_key_file)
