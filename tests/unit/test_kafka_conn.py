"""Settings → connection options: what every Kafka client and the store client are given."""
import os
import ssl
import subprocess
from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from maillink_runtime import mongo
from maillink_runtime.kafka_conn import client_options, kafka_security
from maillink_runtime.settings import KafkaSettings, ServiceSettings, StoreSettings, TopicSettings
from maillink_runtime.topics_admin import new_topics

SECRET = "s3cret-pa55"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Only what a test passes counts, whatever the shell running the tests has set."""
    for name in list(os.environ):
        if name.startswith(("KAFKA_", "MONGODB_", "MAILLINK_TOPIC_", "MAILLINK_PROFILE")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, and a client certificate with its key (plus a key that does not belong to it)."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
            "-keyout", d / "ca.key", "-out", d / "ca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=client",
            "-keyout", d / "client.key", "-out", d / "client.pem")
    openssl("genpkey", "-algorithm", "RSA", "-out", d / "other.key")
    return {"ca": d / "ca.pem", "client": d / "client.pem", "client_key": d / "client.key",
            "other_key": d / "other.key"}


def kafka(**env) -> KafkaSettings:
    return KafkaSettings(**{f"KAFKA_{k.upper()}": str(v) for k, v in env.items()})


def sasl_ssl(pki, **env) -> KafkaSettings:
    return kafka(bootstrap_servers="b1:9096,b2:9096", security_protocol="SASL_SSL", sasl_username="maillink",
                 sasl_password=SECRET, ssl_ca_file=pki["ca"], **env)


def test_plaintext_is_the_default_and_adds_nothing():
    settings = kafka()
    assert kafka_security(settings) is None
    assert client_options(settings) == {"bootstrap_servers": "127.0.0.1:9092"}


def test_sasl_ssl_defaults_to_scram_sha_512_over_verified_tls(pki):
    settings = sasl_ssl(pki)
    assert isinstance(kafka_security(settings), SASLScram512)
    options = client_options(settings)
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "bootstrap_servers": "b1:9096,b2:9096", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "maillink", "sasl_plain_password": SECRET}
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # Only our CA is trusted, not the system's as well.
    assert [dict(x[0] for x in c["subject"])["commonName"] for c in context.get_ca_certs()] == ["test CA"]


@pytest.mark.parametrize("mechanism, cls", [("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext),
                                            ("SCRAM-SHA-512", SASLScram512)])
def test_each_sasl_mechanism_maps_to_its_client_setting(pki, mechanism, cls):
    settings = sasl_ssl(pki, sasl_mechanism=mechanism)
    assert type(kafka_security(settings)) is cls
    assert client_options(settings)["sasl_mechanism"] == mechanism


def test_sasl_plaintext_has_no_tls(pki):
    settings = kafka(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password=SECRET)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and options["ssl_context"] is None
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"


def test_ssl_without_a_ca_file_trusts_the_system_cas_and_still_verifies():
    options = client_options(kafka(security_protocol="SSL"))
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    assert type(kafka_security(kafka(security_protocol="SSL"))) is BaseSecurity


def test_a_client_certificate_is_loaded_for_mutual_tls(pki):
    settings = kafka(security_protocol="SSL", ssl_ca_file=pki["ca"], ssl_cert_file=pki["client"],
                     ssl_key_file=pki["client_key"])
    assert client_options(settings)["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    # Proof that the pair is really loaded: a key that does not match the certificate is refused.
    mismatched = kafka(security_protocol="SSL", ssl_ca_file=pki["ca"], ssl_cert_file=pki["client"],
                       ssl_key_file=pki["other_key"])
    with pytest.raises(ssl.SSLError):
        client_options(mismatched)


@pytest.mark.parametrize("env, complaint", [
    ({"security_protocol": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ({"sasl_username": "u", "sasl_password": SECRET}, "uses no SASL"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
      "sasl_password": SECRET}, "clear text"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": SECRET,
      "ssl_ca_file": "CA"}, "uses no TLS"),
    ({"security_protocol": "SSL", "ssl_key_file": "KEY"}, "KAFKA_SSL_KEY_FILE needs KAFKA_SSL_CERT_FILE"),
    ({"security_protocol": "SSL", "ssl_ca_file": "/nonexistent/ca.pem"}, "KAFKA_SSL_CA_FILE"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u",
      "sasl_password": SECRET}, "KAFKA_SASL_MECHANISM"),
])
def test_incoherent_kafka_settings_are_refused_with_the_variable_named(pki, env, complaint):
    env = {k: {"CA": pki["ca"], "KEY": pki["client_key"]}.get(v, v) for k, v in env.items()}
    with pytest.raises(ValidationError) as err:
        kafka(**env)
    assert complaint in str(err.value)
    assert SECRET not in str(err.value)  # errors never echo the input


def test_the_password_is_never_shown(pki):
    settings = sasl_ssl(pki)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


def test_settings_come_from_the_shared_variables_without_a_service_prefix(monkeypatch, pki):
    for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "maillink",
                        "KAFKA_SASL_PASSWORD": SECRET, "KAFKA_SSL_CA_FILE": str(pki["ca"]),
                        "MONGODB_TLS_CA_FILE": str(pki["ca"]), "MAILLINK_PROFILE": "production"}.items():
        monkeypatch.setenv(name, value)

    class TrackerLike(ServiceSettings):
        model_config = {"env_prefix": "TRACKER_"}

    settings = TrackerLike()
    assert client_options(settings)["sasl_plain_password"] == SECRET
    assert settings.mongodb_tls_ca_file == pki["ca"] and settings.topic_replication_factor == 3


@pytest.mark.parametrize("env, layout", [
    ({}, (6, 1, 1)),
    ({"MAILLINK_PROFILE": "local"}, (6, 1, 1)),
    ({"MAILLINK_PROFILE": "production"}, (12, 3, 2)),
    ({"MAILLINK_PROFILE": "production", "MAILLINK_TOPIC_PARTITIONS": "24"}, (24, 3, 2)),
    ({"MAILLINK_PROFILE": "production", "MAILLINK_TOPIC_REPLICATION_FACTOR": "5",
      "MAILLINK_TOPIC_MIN_INSYNC_REPLICAS": "3"}, (12, 5, 3)),
    ({"MAILLINK_TOPIC_PARTITIONS": "3"}, (3, 1, 1)),
])
def test_topic_layout_follows_the_profile_and_each_value_can_be_overridden(env, layout):
    s = TopicSettings(**env)
    assert (s.topic_partitions, s.topic_replication_factor, s.topic_min_insync_replicas) == layout


@pytest.mark.parametrize("env", [{"MAILLINK_TOPIC_MIN_INSYNC_REPLICAS": "2"},
                                 {"MAILLINK_PROFILE": "production", "MAILLINK_TOPIC_REPLICATION_FACTOR": "1"},
                                 {"MAILLINK_TOPIC_PARTITIONS": "0"}, {"MAILLINK_PROFILE": "staging"}])
def test_impossible_topic_layouts_are_refused(env):
    with pytest.raises(ValidationError):
        TopicSettings(**env)


def test_new_topics_carry_the_layout_and_skip_existing_ones():
    settings = ServiceSettings(MAILLINK_PROFILE="production", MAILLINK_NAMESPACE="ns.")
    topics = new_topics(settings, ["mail.account.v1", "mail.message.received.v1"], {"ns.mail.message.received.v1"})
    by_name = {t.name: t for t in topics}
    assert sorted(by_name) == ["ns.mail.account.v1", "ns.mail.account.v1.dlq", "ns.mail.message.received.v1.dlq"]
    assert all((t.num_partitions, t.replication_factor) == (12, 3) for t in topics)
    assert by_name["ns.mail.account.v1"].topic_configs == {"min.insync.replicas": "2", "cleanup.policy": "compact"}
    assert by_name["ns.mail.account.v1.dlq"].topic_configs == {"min.insync.replicas": "2"}


def test_store_tls_is_off_unless_asked_for_and_verified_when_on(pki):
    assert mongo.tls_options() == {}
    settings = StoreSettings(MONGODB_URL="mongodb://db.example:27017/", MONGODB_TLS_CA_FILE=str(pki["ca"]),
                             MONGODB_TLS_CERT_KEY_FILE=str(pki["client"]))
    options = mongo.tls_options(settings.mongodb_tls_ca_file, settings.mongodb_tls_cert_key_file)
    assert options == {"tls": True, "tlsCAFile": str(pki["ca"]), "tlsCertificateKeyFile": str(pki["client"])}
    ca_only = mongo.connect(settings.mongodb_url, **mongo.tls_options(settings.mongodb_tls_ca_file))
    pool = ca_only.options.pool_options
    assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED and not pool.tls_allow_invalid_hostnames


@pytest.mark.parametrize("query", ["tlsInsecure=true", "tlsAllowInvalidCertificates=true",
                                   "tls=true&tlsAllowInvalidHostnames=true"])
def test_a_store_url_that_turns_verification_off_is_refused(query):
    with pytest.raises(ValidationError, match="turns certificate verification off"):
        StoreSettings(MONGODB_URL=f"mongodb://user:pw@db.example/?{query}")
    StoreSettings(MONGODB_URL="mongodb://user:pw@db.example/?tls=true&tlsAllowInvalidCertificates=false")
