"""Settings every service shares; each service subclasses with its own prefix.

The shared variables (Kafka, the store, topic layout) carry no service prefix, so one environment
configures every service the same way. TLS certificates are always verified: there is no switch
that turns verification off, and a MongoDB URL that tries to is refused.
"""
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AliasChoices, Field, FilePath, PositiveInt, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["local", "production"]
# partitions, replication factor, min.insync.replicas of the topics a service creates.
TOPIC_DEFAULTS: dict[str, tuple[int, int, int]] = {"local": (6, 1, 1), "production": (12, 3, 2)}
TLS_PROTOCOLS = {"SSL", "SASL_SSL"}
SASL_PROTOCOLS = {"SASL_PLAINTEXT", "SASL_SSL"}
# URL options with which a MongoDB driver would accept any certificate or host name.
_MONGO_INSECURE = {"tlsinsecure", "tlsallowinvalidcertificates", "tlsallowinvalidhostnames",
                   "sslallowinvalidcertificates", "sslallowinvalidhostnames"}


def shared(default, env: str, description: str, **kw):
    return Field(default, validation_alias=AliasChoices(env), description=description, **kw)


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    kafka_bootstrap_servers: str = shared("127.0.0.1:9092", "KAFKA_BOOTSTRAP_SERVERS", "Kafka bootstrap servers.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = shared(
        "PLAINTEXT", "KAFKA_SECURITY_PROTOCOL", "How clients talk to the brokers.")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = shared(
        "SCRAM-SHA-512", "KAFKA_SASL_MECHANISM", "SASL mechanism (SASL_* protocols only).")
    kafka_sasl_username: str | None = shared(None, "KAFKA_SASL_USERNAME", "SASL user name.")
    kafka_sasl_password: SecretStr | None = shared(None, "KAFKA_SASL_PASSWORD", "SASL password (never logged).")
    kafka_ssl_ca_file: FilePath | None = shared(
        None, "KAFKA_SSL_CA_FILE", "PEM file of the CA(s) to trust for the brokers; the system CAs when unset.")
    kafka_ssl_cert_file: FilePath | None = shared(
        None, "KAFKA_SSL_CERT_FILE", "Client certificate (PEM) for mutual TLS; may also hold the key.")
    kafka_ssl_key_file: FilePath | None = shared(None, "KAFKA_SSL_KEY_FILE", "Client private key (PEM) for mutual TLS.")

    @model_validator(mode="after")
    def _coherent_kafka(self):
        protocol, tls = self.kafka_security_protocol, self.kafka_security_protocol in TLS_PROTOCOLS
        if protocol in SASL_PROTOCOLS and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if protocol not in SASL_PROTOCOLS and (self.kafka_sasl_username or self.kafka_sasl_password):
            # Credentials that would silently go unused are a misconfiguration, not a default.
            raise ValueError(f"KAFKA_SASL_USERNAME/PASSWORD are set but KAFKA_SECURITY_PROTOCOL={protocol} "
                             "uses no SASL")
        if protocol == "SASL_PLAINTEXT" and self.kafka_sasl_mechanism == "PLAIN":
            raise ValueError("SASL PLAIN over SASL_PLAINTEXT sends the password in clear text; use SASL_SSL")
        if not tls and (self.kafka_ssl_ca_file or self.kafka_ssl_cert_file or self.kafka_ssl_key_file):
            raise ValueError(f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS")
        if self.kafka_ssl_key_file and not self.kafka_ssl_cert_file:
            raise ValueError("KAFKA_SSL_KEY_FILE needs KAFKA_SSL_CERT_FILE")
        return self


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    mongodb_url: str = shared("mongodb://127.0.0.1:27017/", "MONGODB_URL", "MongoDB (or FerretDB) connection URL.")
    mongodb_tls_ca_file: FilePath | None = shared(
        None, "MONGODB_TLS_CA_FILE", "PEM file of the CA(s) to trust for the store; setting it turns TLS on.")
    mongodb_tls_cert_key_file: FilePath | None = shared(
        None, "MONGODB_TLS_CERT_KEY_FILE",
        "Client certificate and private key in one PEM file (mutual TLS / X.509 auth); setting it turns TLS on.")

    @model_validator(mode="after")
    def _verified_store(self):
        options = {k.lower(): v.lower() for k, v in parse_qsl(urlsplit(self.mongodb_url).query)}
        insecure = [k for k in _MONGO_INSECURE if options.get(k) in ("true", "1", "yes")]
        if insecure:
            raise ValueError(f"MONGODB_URL turns certificate verification off ({', '.join(sorted(insecure))}); "
                             "add the CA with MONGODB_TLS_CA_FILE instead")
        return self


class TopicSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    profile: Profile = shared("local", "MAILLINK_PROFILE",
                              "local (one broker) or production (topic defaults for a replicated cluster).")
    topic_partitions: PositiveInt | None = shared(
        None, "MAILLINK_TOPIC_PARTITIONS", "Partitions of created topics (profile default: 6 local, 12 production).")
    topic_replication_factor: PositiveInt | None = shared(
        None, "MAILLINK_TOPIC_REPLICATION_FACTOR", "Replication factor of created topics (1 local, 3 production).")
    topic_min_insync_replicas: PositiveInt | None = shared(
        None, "MAILLINK_TOPIC_MIN_INSYNC_REPLICAS", "min.insync.replicas of created topics (1 local, 2 production).")

    @model_validator(mode="after")
    def _profile_defaults(self):
        partitions, replication, min_isr = TOPIC_DEFAULTS[self.profile]
        self.topic_partitions = self.topic_partitions or partitions
        self.topic_replication_factor = self.topic_replication_factor or replication
        self.topic_min_insync_replicas = self.topic_min_insync_replicas or min_isr
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            # acks=all could never succeed: every publish would fail with NotEnoughReplicas.
            raise ValueError(f"MAILLINK_TOPIC_MIN_INSYNC_REPLICAS ({self.topic_min_insync_replicas}) exceeds "
                             f"the replication factor ({self.topic_replication_factor})")
        return self


class ServiceSettings(KafkaSettings, StoreSettings, TopicSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    namespace: str = shared("", "MAILLINK_NAMESPACE",
                            "Prefix for topic and database names; lets several deployments share one broker and store.")
    log_level: str = shared("INFO", "LOG_LEVEL", "Log level.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    startup_wait_s: float = shared(300.0, "MAILLINK_STARTUP_WAIT_S",
                                   "How long a starting service waits for an unreachable Kafka before it exits.")
    handler_retries: int = shared(3, "MAILLINK_HANDLER_RETRIES",
                                  "Attempts for a failing handler before its message goes to the dead-letter topic.")

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def database(self, service: str) -> str:
        return f"{self.namespace.replace('.', '_')}maillink_{service}"
