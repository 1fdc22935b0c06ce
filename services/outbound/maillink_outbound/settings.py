from pydantic_settings import SettingsConfigDict

from maillink_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OUTBOUND_", extra="ignore")

    http_port: int = 8104
