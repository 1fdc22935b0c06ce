"""Settings every service shares; each service subclasses with its own prefix."""
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def shared(default, env: str, description: str):
    return Field(default, validation_alias=AliasChoices(env), description=description)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str = shared("127.0.0.1:9092", "KAFKA_BOOTSTRAP_SERVERS", "Kafka bootstrap servers.")
    mongodb_url: str = shared("mongodb://127.0.0.1:27017/", "MONGODB_URL", "MongoDB (or FerretDB) connection URL.")
    namespace: str = shared("", "MAILLINK_NAMESPACE",
                            "Prefix for topic and database names; lets several deployments share one broker and store.")
    log_level: str = shared("INFO", "LOG_LEVEL", "Log level.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    handler_retries: int = shared(3, "MAILLINK_HANDLER_RETRIES",
                                  "Attempts for a failing handler before its message goes to the dead-letter topic.")

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    def database(self, service: str) -> str:
        return f"{self.namespace.replace('.', '_')}maillink_{service}"
